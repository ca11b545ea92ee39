//! Reading one update from its JSON, on its own.
//!
//! teloxide reads a getUpdates answer as a whole: one update it cannot read
//! (a lone UTF-16 surrogate escape, a field of an unexpected type) fails the
//! whole batch, the offset never moves and every later update waits forever.
//! Here every update of a batch (or one webhook body) is read by itself:
//!
//! - what teloxide reads is used as it is (the fast path);
//! - a message with parts this version does not know yet (a new entity type,
//!   a new kind of reply markup or forward origin) is read without those
//!   parts, so the question in it is still answered;
//! - a kind of update this version does not know is reported as
//!   [`Incoming::Unknown`] and skipped;
//! - anything else is [`Incoming::Bad`]: its `update_id` (when it can be
//!   read) and what is wrong with it — never its content, which is a user's.

use serde::Deserialize;
use serde_json::{Map, Value};
use teloxide::types::{CallbackQuery, Message, MessageEntity, MessageKind, Update, UpdateKind};

/// One update as read from Telegram.
#[derive(Debug)]
pub enum Incoming {
    /// Read; `dropped` names the parts left out to read it (empty normally).
    Update {
        update: Box<Update>,
        dropped: Vec<String>,
    },
    /// A kind of update this version does not know (Telegram adds kinds).
    Unknown { id: i64, kind: String },
    /// Could not be read: skipped.
    Bad { id: Option<i64>, error: String },
}

impl Incoming {
    /// The update's id, when it could be read.
    pub fn id(&self) -> Option<i64> {
        match self {
            Incoming::Update { update, .. } => Some(i64::from(update.id.0)),
            Incoming::Unknown { id, .. } => Some(*id),
            Incoming::Bad { id, .. } => *id,
        }
    }
}

/// The kind of an update as Telegram names it (for metrics).
pub fn kind_name(update: &Update) -> &'static str {
    match &update.kind {
        UpdateKind::Message(_) => "message",
        UpdateKind::EditedMessage(_) => "edited_message",
        UpdateKind::ChannelPost(_) => "channel_post",
        UpdateKind::EditedChannelPost(_) => "edited_channel_post",
        UpdateKind::InlineQuery(_) => "inline_query",
        UpdateKind::ChosenInlineResult(_) => "chosen_inline_result",
        UpdateKind::CallbackQuery(_) => "callback_query",
        UpdateKind::MyChatMember(_) => "my_chat_member",
        UpdateKind::ChatMember(_) => "chat_member",
        UpdateKind::Error(_) => "unreadable",
        _ => "other",
    }
}

impl Incoming {
    /// Its kind for metrics: Telegram's name, `unknown` or `unreadable`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Incoming::Update { update, .. } => kind_name(update),
            Incoming::Unknown { .. } => "unknown",
            Incoming::Bad { .. } => "unreadable",
        }
    }
}

/// Update kinds of the Bot API this version reads (teloxide-core 0.13).
const KNOWN_KINDS: &[&str] = &[
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
];

/// Kinds whose payload is a `Message`.
const MESSAGE_KINDS: &[&str] = &[
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_message",
    "edited_business_message",
];

/// Optional parts of a message a question does not need; left out, one at a
/// time, when a message cannot be read with them.
const DECORATIONS: &[&str] = &[
    "reply_markup",
    "forward_origin",
    "external_reply",
    "quote",
    "reply_to_story",
    "link_preview_options",
    "reply_to_message",
    "pinned_message",
];

/// Read one update (one element of a getUpdates `result`, or a webhook body).
pub fn parse(raw: &str) -> Incoming {
    match serde_json::from_str::<Update>(raw) {
        Ok(update) if read_well(&update) => Incoming::Update {
            update: Box::new(update),
            dropped: Vec::new(),
        },
        _ => parse_slowly(raw),
    }
}

/// teloxide turns a payload it cannot read into `UpdateKind::Error`, and a
/// message it cannot read into an empty message (`MessageKind::Empty`, which
/// matches anything): both need a closer look.
fn read_well(update: &Update) -> bool {
    match &update.kind {
        UpdateKind::Error(_) => false,
        UpdateKind::Message(m)
        | UpdateKind::EditedMessage(m)
        | UpdateKind::ChannelPost(m)
        | UpdateKind::EditedChannelPost(m)
        | UpdateKind::BusinessMessage(m)
        | UpdateKind::EditedBusinessMessage(m) => !matches!(m.kind, MessageKind::Empty {}),
        _ => true,
    }
}

#[derive(Deserialize)]
struct IdOnly {
    update_id: i64,
}

fn parse_slowly(raw: &str) -> Incoming {
    // Strings are skipped unchecked here, so the id of an update with a
    // broken string can still be read and the offset moved past it.
    let id = serde_json::from_str::<IdOnly>(raw)
        .ok()
        .map(|u| u.update_id);
    let mut map: Map<String, Value> = match serde_json::from_str(raw) {
        Ok(m) => m,
        Err(e) => {
            return Incoming::Bad {
                id,
                error: describe(&e),
            };
        }
    };
    let Some(id) = id else {
        return Incoming::Bad {
            id: None,
            error: "no integer update_id".into(),
        };
    };
    let Some(kind) = map.keys().find(|k| *k != "update_id").cloned() else {
        return Incoming::Bad {
            id: Some(id),
            error: "an update without content".into(),
        };
    };
    if !KNOWN_KINDS.contains(&kind.as_str()) {
        return Incoming::Unknown { id, kind };
    }
    let mut dropped = Vec::new();
    if let Some(payload) = map.get_mut(&kind) {
        if MESSAGE_KINDS.contains(&kind.as_str()) {
            repair_message(payload, &mut dropped);
        } else if kind == "callback_query"
            && let Some(message) = payload.get_mut("message")
        {
            repair_message(message, &mut dropped);
        }
    }
    let payload = map.get(&kind).cloned().unwrap_or(Value::Null);
    // Through text: teloxide's `Update` reads only from text, not from a `Value`.
    let text = Value::Object(map).to_string();
    let has_text = payload.get("text").is_some() || payload.get("caption").is_some();
    match serde_json::from_str::<Update>(&text) {
        // A message read without its text would be dropped unanswered.
        Ok(update)
            if read_well(&update)
                || (!has_text && !matches!(update.kind, UpdateKind::Error(_))) =>
        {
            Incoming::Update {
                update: Box::new(update),
                dropped,
            }
        }
        _ => Incoming::Bad {
            id: Some(id),
            error: why_not(&kind, payload),
        },
    }
}

/// Leave out what keeps a message from being read: entities of types this
/// version does not know (anywhere, also in a replied-to message), then
/// optional parts, one at a time.
fn repair_message(message: &mut Value, dropped: &mut Vec<String>) {
    drop_unknown_entities(message, "", dropped);
    if reads_fully(message) {
        return;
    }
    let Some(obj) = message.as_object() else {
        return;
    };
    for key in DECORATIONS {
        if !obj.contains_key(*key) {
            continue;
        }
        let mut without = message.clone();
        if let Some(o) = without.as_object_mut() {
            o.remove(*key);
        }
        if reads_fully(&without) {
            *message = without;
            dropped.push((*key).to_string());
            return;
        }
    }
}

/// Reads as a `Message` that kept its text and caption.
fn reads_fully(v: &Value) -> bool {
    serde_json::from_str::<Message>(&v.to_string()).is_ok_and(|m| {
        (v.get("text").is_none() || m.text().is_some())
            && (v.get("caption").is_none() || m.caption().is_some())
    })
}

fn drop_unknown_entities(v: &mut Value, path: &str, dropped: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                let here = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                if key.ends_with("entities")
                    && let Value::Array(list) = child
                {
                    list.retain(|e| {
                        let known = serde_json::from_str::<MessageEntity>(&e.to_string()).is_ok();
                        if !known {
                            // The type is Telegram's word, not the user's.
                            let kind = e
                                .get("type")
                                .and_then(Value::as_str)
                                .filter(|t| {
                                    t.len() <= 40
                                        && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                                })
                                .unwrap_or("?");
                            dropped.push(format!("{here}: entity of unknown type `{kind}`"));
                        }
                        known
                    });
                } else {
                    drop_unknown_entities(child, &here, dropped);
                }
            }
        }
        Value::Array(list) => {
            for child in list {
                drop_unknown_entities(child, path, dropped);
            }
        }
        _ => {}
    }
}

/// Why a payload cannot be read: the field and the kind of problem, never
/// the content.
fn why_not(kind: &str, payload: Value) -> String {
    fn explain<T: serde::de::DeserializeOwned>(kind: &str, payload: Value) -> String {
        let text = payload.to_string();
        let mut de = serde_json::Deserializer::from_str(&text);
        match serde_path_to_error::deserialize::<_, T>(&mut de) {
            Ok(_) => format!("`{kind}`: read only in part (its text was lost)"),
            Err(e) => {
                let path = e.path().to_string();
                let what = describe(e.inner());
                if path.is_empty() || path == "." {
                    format!("`{kind}`: {what}")
                } else {
                    format!("`{kind}.{path}`: {what}")
                }
            }
        }
    }
    match kind {
        k if MESSAGE_KINDS.contains(&k) => explain::<Message>(kind, payload),
        "callback_query" => explain::<CallbackQuery>(kind, payload),
        "inline_query" => explain::<teloxide::types::InlineQuery>(kind, payload),
        "my_chat_member" | "chat_member" => {
            explain::<teloxide::types::ChatMemberUpdated>(kind, payload)
        }
        _ => format!("`{kind}`: unreadable"),
    }
}

/// A serde_json error without the data it quotes.
fn describe(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let text = e.to_string();
    // serde_json appends " at line L column C"; keep only the message.
    let message = match text.rfind(" at line ") {
        Some(i) if e.line() > 0 => &text[..i],
        _ => text.as_str(),
    };
    match e.classify() {
        // Syntax messages are fixed texts ("lone leading surrogate in hex escape").
        Category::Syntax => format!("malformed JSON: {message} (column {})", e.column()),
        Category::Eof => "truncated JSON".into(),
        Category::Io => "unreadable".into(),
        Category::Data => describe_data(message),
    }
}

/// Data errors quote the value they did not expect: keep only what the type
/// expected, the names of fields and variants (Telegram's words).
fn describe_data(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let found = rest
                .split([' ', ','])
                .next()
                .filter(|w| w.bytes().all(|b| b.is_ascii_alphabetic()))
                .unwrap_or("a value");
            let expected = rest
                .rfind(", expected ")
                .map(|i| &rest[i + 2..])
                .unwrap_or("something else");
            return format!("{}{found}, {expected}", prefix);
        }
    }
    for prefix in ["unknown variant `", "unknown field `", "missing field `"] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some(end) = rest.find('`')
            && end <= 40
        {
            return format!("{prefix}{}`", &rest[..end]);
        }
    }
    if message.starts_with("data did not match any variant of untagged enum ")
        || message.starts_with("invalid length ")
    {
        return message.to_string();
    }
    "unreadable data".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(text: &str, entities: Value) -> Value {
        json!({
            "message_id": 7,
            "from": {"id": 42, "is_bot": false, "first_name": "A"},
            "chat": {"id": 42, "type": "private", "first_name": "A"},
            "date": 1_700_000_000,
            "text": text,
            "entities": entities,
        })
    }

    fn raw(id: i64, kind: &str, payload: Value) -> String {
        json!({"update_id": id, kind: payload}).to_string()
    }

    #[test]
    fn a_good_update_takes_the_fast_path() {
        let r = raw(
            5,
            "message",
            message(
                "/start",
                json!([{"type": "bot_command", "offset": 0, "length": 6}]),
            ),
        );
        match parse(&r) {
            Incoming::Update { update, dropped } => {
                assert_eq!(update.id.0, 5);
                assert!(dropped.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_lone_surrogate_is_bad_but_its_id_is_read() {
        let r = raw(9, "message", message("SECRET", json!([]))).replace("SECRET", "秘密\\ud800");
        match parse(&r) {
            Incoming::Bad { id, error } => {
                assert_eq!(id, Some(9));
                assert!(error.starts_with("malformed JSON"), "{error}");
                assert!(!error.contains("秘密"), "{error}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_field_of_the_wrong_type_is_bad_and_the_content_is_not_quoted() {
        let mut m = message("李彬", json!([]));
        m["date"] = json!("yesterday-secret");
        match parse(&raw(11, "message", m)) {
            Incoming::Bad { id, error } => {
                assert_eq!(id, Some(11));
                assert!(!error.contains("secret"), "{error}");
                assert!(!error.contains("李彬"), "{error}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unknown_entity_type_is_left_out_and_the_message_kept() {
        let m = message(
            "/winner 李彬",
            json!([
                {"type": "bot_command", "offset": 0, "length": 7},
                {"type": "shiny_new_entity", "offset": 8, "length": 2, "extra": {"x": 1}}
            ]),
        );
        match parse(&raw(12, "message", m)) {
            Incoming::Update { update, dropped } => {
                let UpdateKind::Message(msg) = update.kind else {
                    panic!("not a message");
                };
                assert_eq!(msg.text(), Some("/winner 李彬"));
                assert_eq!(msg.entities().map(<[_]>::len), Some(1));
                assert_eq!(dropped.len(), 1, "{dropped:?}");
                assert!(dropped[0].contains("shiny_new_entity"), "{dropped:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unknown_forward_origin_is_left_out() {
        let mut m = message("李彬", json!([]));
        m["forward_origin"] = json!({"type": "hologram", "date": 1});
        match parse(&raw(13, "message", m)) {
            Incoming::Update { dropped, .. } => assert_eq!(dropped, ["forward_origin"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_update_kinds_and_fields() {
        match parse(&raw(14, "future_update", json!({"x": 1}))) {
            Incoming::Unknown { id, kind } => {
                assert_eq!((id, kind.as_str()), (14, "future_update"));
            }
            other => panic!("{other:?}"),
        }
        let mut m = message("李彬", json!([]));
        m["a_field_from_2030"] = json!({"nested": [1, 2, 3]});
        assert!(matches!(
            parse(&raw(15, "message", m)),
            Incoming::Update { .. }
        ));
        assert!(matches!(parse("[1,2]"), Incoming::Bad { id: None, .. }));
        assert!(matches!(
            parse(r#"{"update_id": 3}"#),
            Incoming::Bad { id: Some(3), .. }
        ));
    }

    #[test]
    fn data_errors_keep_only_types_and_names() {
        assert_eq!(
            describe_data("invalid type: string \"a, expected x\", expected i32"),
            "invalid type: string, expected i32"
        );
        assert_eq!(
            describe_data("unknown variant `hologram`, expected one of `user`, `chat`"),
            "unknown variant `hologram`"
        );
        assert_eq!(describe_data("something \"private\""), "unreadable data");
    }
}
