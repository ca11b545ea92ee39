#!/usr/bin/env bash
# Regenerates data/fonts/NotoSansCJKsc-Regular-subset.otf, the font of the
# large-print tips pictures (src/card/), from the upstream font file.
#
# Upstream: Noto Sans CJK SC Regular, version 2.004 (Google / Adobe, SIL Open
# Font License 1.1, see OFL.txt), face 2 ("Noto Sans CJK SC") of
#   /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc
# from Debian's package `fonts-noto-cjk` (bookworm: 1:20220127+repack1-1),
# which repackages the Sans/ fonts of the googlefonts/noto-cjk repository:
#   apt-get install fonts-noto-cjk
# Subsetting: fontTools' pyftsubset (`pip install fonttools`).
#
# Characters kept:
#   - GB2312 level 1: the 3,755 most common Han characters (rows 16-55 of
#     GB2312, enumerated with Python's own gb2312 codec, nothing downloaded);
#   - GB2312 rows 1-3: Chinese punctuation, symbols, numbers, full-width ASCII;
#   - printable ASCII, Latin-1 punctuation, general punctuation (“”‘’…—),
#     CJK symbols and punctuation (U+3000-303F), full-width forms (U+FF01-FF5E);
#   - every character of the built-in data (data/**/*.json, data/sources/*.txt),
#     so whatever the report says can be drawn even outside level 1.
# Dropped: hinting (the renderer does not use it; large sizes do not need it),
# layout tables (the renderer lays CJK and Latin out by advance widths) and
# vertical metrics. The name table is kept whole, copyright and licence fields
# included.
#
# Usage: bash data/fonts/make-subset.sh [UPSTREAM.ttc]
# After changing the data, run it again if the card test reports a character
# the font cannot draw (`cargo test card`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
data="$(dirname "$here")"
upstream="${1:-/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc}"
face=2 # Noto Sans CJK SC in the Regular collection
out="$here/NotoSansCJKsc-Regular-subset.otf"

if [ ! -f "$upstream" ]; then
  echo "$upstream: not found; install it with: apt-get install fonts-noto-cjk" >&2
  exit 1
fi
if ! command -v pyftsubset >/dev/null; then
  echo "pyftsubset not found; install it with: pip install fonttools" >&2
  exit 1
fi

chars="$(mktemp)"
trap 'rm -f "$chars"' EXIT
python3 - "$upstream" "$face" "$data" "$chars" <<'PY'
import json, pathlib, sys
from fontTools.ttLib import TTFont

upstream, face, data, out = sys.argv[1], int(sys.argv[2]), pathlib.Path(sys.argv[3]), sys.argv[4]
name = TTFont(upstream, fontNumber=face, lazy=True)["name"].getDebugName(4)
if name != "Noto Sans CJK SC":
    sys.exit(f"{upstream} face {face} is {name!r}, not 'Noto Sans CJK SC'")

def gb2312_rows(rows, last_row_end=0xFE):
    out = set()
    for row in rows:
        for cell in range(0xA1, 0xFF):
            try:
                out.add(bytes([0xA0 + row, cell]).decode("gb2312"))
            except UnicodeDecodeError:
                pass  # unassigned code point
    return out

level1 = gb2312_rows(range(16, 56))
han_level1 = {c for c in level1 if "\u4e00" <= c <= "\u9fff"}
assert len(han_level1) == 3755, len(han_level1)
symbols = gb2312_rows(range(1, 4))
ranges = [(0x20, 0x7E), (0xA0, 0xBF), (0xD7, 0xD7), (0xF7, 0xF7), (0x2010, 0x2027),
          (0x2030, 0x203B), (0x3000, 0x303F), (0xFF01, 0xFF5E), (0xFFE0, 0xFFE5)]
common = {chr(c) for a, b in ranges for c in range(a, b + 1)}

def strings(v):
    if isinstance(v, str):
        yield v
    elif isinstance(v, list):
        for x in v:
            yield from strings(x)
    elif isinstance(v, dict):
        for k, x in v.items():
            yield k
            yield from strings(x)

data_chars = set()
for p in sorted(data.rglob("*.json")):
    for s in strings(json.loads(p.read_text(encoding="utf-8"))):
        data_chars.update(s)
for p in sorted((data / "sources").glob("*.txt")):
    data_chars.update(p.read_text(encoding="utf-8"))
data_chars = {c for c in data_chars if c.isprintable()}

cmap = TTFont(upstream, fontNumber=face, lazy=True).getBestCmap()
wanted = level1 | symbols | common | data_chars
missing = sorted(c for c in data_chars if ord(c) not in cmap)
if missing:
    print("upstream font lacks data characters:", " ".join(f"U+{ord(c):04X}" for c in missing), file=sys.stderr)
kept = sorted(c for c in wanted if ord(c) in cmap)
pathlib.Path(out).write_text("".join(kept), encoding="utf-8")
print(f"characters: {len(kept)} ({len(han_level1)} GB2312 level 1 Han, "
      f"{len(data_chars)} in the data, {len(data_chars - level1 - symbols - common)} of them outside the common sets)")
PY

pyftsubset "$upstream" \
  --font-number="$face" \
  --text-file="$chars" \
  --output-file="$out" \
  --no-hinting \
  --desubroutinize \
  --layout-features='' \
  --drop-tables+=GSUB,GPOS,GDEF,BASE,VORG,vhea,vmtx \
  --name-IDs='*' \
  --notdef-outline \
  --recommended-glyphs
echo "$out: $(stat -c %s "$out") bytes"
