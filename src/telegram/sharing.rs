//! Passing tips on to a relative: the large-print picture and inline mode.
//!
//! - [`send_picture`]: "大字图片" pressed. A topic's card is drawn and
//!   uploaded the first time; the `file_id` Telegram answers is kept in the
//!   [`Store`](crate::store::Store) under the bot and the card's key (topic,
//!   language, a hash of what is drawn), so later presses — on any instance,
//!   after restarts — send it by reference. A new data version means a new
//!   key and one new upload. A card the font cannot draw goes out as text.
//! - [`inline_tips`]: the results for `@bot tips 验证码`, which the "转发给家人"
//!   button puts in the chat the user picks: the tips as text, and the
//!   picture when one was uploaded before (inline results can only carry a
//!   picture Telegram already has).

use super::App;
use super::handlers::{log_send_failure, reply};
use super::send::{self, Destination, MAX_MESSAGE_UNITS, Photo, SendFailure, split_message};
use super::subscriptions::blocking;
use crate::card;
use crate::engine::Lang;
use crate::render;
use crate::store::FileKey;
use teloxide::prelude::*;
use teloxide::types::{
    InlineQueryResult, InlineQueryResultArticle, InlineQueryResultCachedPhoto, InputMessageContent,
    InputMessageContentText, ParseMode,
};

fn lang_code(lang: Lang) -> &'static str {
    match lang {
        Lang::Zh => "zh",
        Lang::En => "en",
    }
}

/// The uploaded picture of a card for this bot, if any. A store that
/// cannot answer means an upload, not a failure.
async fn cached_file(app: &App, key: &FileKey) -> Option<String> {
    let k = key.clone();
    match blocking(&app.store, move |s| s.uploaded_file(&k)).await {
        Ok(id) => id,
        Err(e) => {
            tracing::warn!(key = %key.key, error = %e, "cannot read the picture cache; uploading");
            None
        }
    }
}

/// The tips as text, where a picture was asked for and cannot be made.
async fn tips_as_text(bot: &Bot, app: &App, to: Destination, topic: Option<&str>, lang: Lang) {
    let engine = app.engine();
    let answer = engine.answer_tips(topic, lang);
    reply(bot, app, to, render::html(&engine, &answer), None).await;
}

/// Send the large-print picture of a topic's tips (`None`: the overview)
/// to `to`: by `file_id` if this bot uploaded it before, else drawn and
/// uploaded, its `file_id` kept. Returns the intent for the log.
pub async fn send_picture(
    bot: &Bot,
    app: &App,
    bot_id: UserId,
    to: Destination,
    topic: Option<&str>,
    lang: Lang,
) -> &'static str {
    let engine = app.engine();
    let cards = app.cards();
    let Some(key) = cards.key(topic, lang).cloned() else {
        // The font lacks a character of this card (the data load logged
        // which): never a picture with empty boxes.
        let why = cards
            .entry(topic, lang)
            .and_then(|e| e.problem.as_ref())
            .map_or_else(|| "no such card".to_string(), ToString::to_string);
        tracing::warn!(
            topic = topic.unwrap_or("*"),
            lang = lang_code(lang),
            "no large-print picture; sending the tips as text: {why}"
        );
        tips_as_text(bot, app, to, topic, lang).await;
        return "tips_picture_as_text";
    };
    let file_key = FileKey {
        bot_id: bot_id.0 as i64,
        key: key.as_str().to_string(),
    };
    if let Some(file_id) = cached_file(app, &file_key).await {
        let caption = card::caption(engine.knowledge(), topic, lang).unwrap_or_default();
        let photo = Photo::FileId(file_id.clone());
        match send::send_photo(bot, &app.out, to, photo, &caption, None).await {
            Ok(_) => return "tips_picture",
            Err(SendFailure::BadFile(e)) => {
                // Telegram lost it (or it is another bot's): upload again.
                tracing::warn!(key = %file_key.key, error = %e, "stored picture refused; uploading again");
                let k = file_key.clone();
                if let Err(e) = blocking(&app.store, move |s| s.forget_upload(&k, &file_id)).await {
                    tracing::warn!(error = %e, "cannot forget a refused picture");
                }
            }
            Err(e) => {
                log_send_failure(app, to.chat, &e);
                return "tips_picture_failed";
            }
        }
    }
    // Drawing takes milliseconds of CPU: off the async threads.
    let knowledge = engine.knowledge_arc();
    let wanted = topic.map(str::to_string);
    let drawn = tokio::task::spawn_blocking(move || {
        card::render_topic(&knowledge, wanted.as_deref(), lang)
    })
    .await;
    let drawn = match drawn {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            tracing::warn!(
                topic = topic.unwrap_or("*"),
                "cannot draw the picture; sending the tips as text: {e}"
            );
            tips_as_text(bot, app, to, topic, lang).await;
            return "tips_picture_as_text";
        }
        Err(e) => {
            tracing::error!(error = %e, "drawing a picture failed; sending the tips as text");
            tips_as_text(bot, app, to, topic, lang).await;
            return "tips_picture_as_text";
        }
    };
    let photo = Photo::Png {
        bytes: drawn.png,
        name: format!(
            "tips-{}-{}.png",
            topic.unwrap_or("overview"),
            lang_code(lang)
        ),
    };
    match send::send_photo(bot, &app.out, to, photo, &drawn.caption, None).await {
        Ok(sent) => {
            match sent.file_id {
                // Under the key of what was drawn (the data may have been
                // reloaded since the catalog was read).
                Some(file_id) => {
                    let k = FileKey {
                        key: drawn.key.as_str().to_string(),
                        ..file_key
                    };
                    if let Err(e) =
                        blocking(&app.store, move |s| s.remember_upload(&k, &file_id)).await
                    {
                        tracing::warn!(error = %e, "cannot keep the picture's file_id; it will be uploaded again");
                    }
                }
                None => tracing::warn!("Telegram answered a photo without a file_id"),
            }
            "tips_picture_uploaded"
        }
        Err(e) => {
            log_send_failure(app, to.chat, &e);
            "tips_picture_failed"
        }
    }
}

/// Inline results for `tips <topic>`: the tips as a message, and the
/// picture if this bot uploaded it for this data version before.
pub async fn inline_tips(
    app: &App,
    bot_id: UserId,
    topic: Option<&str>,
    lang: Lang,
) -> Vec<InlineQueryResult> {
    let engine = app.engine();
    let answer = engine.answer_tips(topic, lang);
    // One message: whole lines up to Telegram's limit.
    let html = split_message(&render::html(&engine, &answer), MAX_MESSAGE_UNITS)
        .into_iter()
        .next()
        .unwrap_or_default();
    if html.is_empty() {
        return Vec::new();
    }
    let caption = card::caption(engine.knowledge(), topic, lang)
        .unwrap_or_else(|_| render::summary(&engine, &answer));
    let id = format!("tips-{}-{}", topic.unwrap_or("all"), lang_code(lang));
    let description = match lang {
        Lang::Zh => "发送防骗提示(文字)",
        Lang::En => "Send the anti-fraud tips (text)",
    };
    let mut results: Vec<InlineQueryResult> = vec![
        InlineQueryResultArticle::new(
            format!("{id}-text"),
            caption.clone(),
            InputMessageContent::Text(
                InputMessageContentText::new(html).parse_mode(ParseMode::Html),
            ),
        )
        .description(description)
        .into(),
    ];
    if let Some(key) = app.cards().key(topic, lang) {
        let file_key = FileKey {
            bot_id: bot_id.0 as i64,
            key: key.as_str().to_string(),
        };
        if let Some(file_id) = cached_file(app, &file_key).await {
            let title = match lang {
                Lang::Zh => "大字图片",
                Lang::En => "Large-print picture",
            };
            results.push(
                InlineQueryResultCachedPhoto::new(
                    format!("{id}-picture"),
                    teloxide::types::FileId(file_id),
                )
                .title(title)
                .caption(caption)
                .into(),
            );
        }
    }
    results
}
