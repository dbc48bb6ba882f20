//! Matrix media both ways.
//!
//! In: a user's `m.image`, `m.file`, `m.audio` or `m.video` becomes a
//! [`Media`] (its name, media type and source); before the message is
//! submitted its bytes are fetched from the homeserver with matrix-sdk's
//! media API (which decrypts the `EncryptedFile` of an encrypted room) and
//! uploaded to gorpd, and the caption becomes the message's text. Out: a
//! file of an answer is sent with `send_attachment` (uploaded, encrypted in
//! an encrypted room, images as `m.image`, audio as `m.audio`, video as
//! `m.video`, anything else as `m.file`); files above the homeserver's
//! upload limit or `--matrix-max-file-bytes` become a web-chat link (the
//! shared runner decides, from [`crate::platform::Matrix`]'s limit).

use gorp_gateway::{Inbound, InboundFile, ListenContext, OutboundFile, UploadError};
use matrix_sdk::attachment::AttachmentConfig;
use matrix_sdk::media::{MediaFormat, MediaRequestParameters};
use matrix_sdk::room::reply::{EnforceThread, Reply};
use matrix_sdk::ruma::events::room::MediaSource;
use matrix_sdk::ruma::events::room::message::{AddMentions, MessageType};
use matrix_sdk::ruma::{OwnedEventId, OwnedTransactionId};
use matrix_sdk::{Client, Room};
use std::time::Duration;

/// The media of a user's message, not yet fetched.
#[derive(Debug, Clone)]
pub(crate) struct Media {
    /// The file name.
    pub(crate) name: String,
    /// Its media type (`image/png`), `application/octet-stream` when not given.
    pub(crate) media_type: String,
    /// Where its bytes are (plain `mxc://` or an encrypted file).
    pub(crate) source: MediaSource,
}

/// The media and caption of a media message; `None` for other message types.
pub(crate) fn of_message(msgtype: &MessageType) -> Option<(Media, String)> {
    let (filename, caption, source, mimetype) = match msgtype {
        MessageType::Image(c) => {
            (c.filename(), c.caption(), &c.source, c.info.as_ref().and_then(|i| i.mimetype.clone()))
        }
        MessageType::File(c) => {
            (c.filename(), c.caption(), &c.source, c.info.as_ref().and_then(|i| i.mimetype.clone()))
        }
        MessageType::Audio(c) => {
            (c.filename(), c.caption(), &c.source, c.info.as_ref().and_then(|i| i.mimetype.clone()))
        }
        MessageType::Video(c) => {
            (c.filename(), c.caption(), &c.source, c.info.as_ref().and_then(|i| i.mimetype.clone()))
        }
        _ => return None,
    };
    let name = if filename.trim().is_empty() { "file".to_owned() } else { filename.to_owned() };
    let media_type = mimetype.filter(|m| m.parse::<mime::Mime>().is_ok());
    let media = Media {
        name,
        media_type: media_type.unwrap_or_else(|| "application/octet-stream".to_owned()),
        source: source.clone(),
    };
    Some((media, caption.unwrap_or_default().to_owned()))
}

/// Fetches `media` from the homeserver (decrypting it) and uploads it to
/// gorpd. `None` when it cannot be sent (its author is told why); while
/// gorpd is unreachable it tries again every second until the gateway stops
/// (`None` then too: the sync position does not move, the message comes again).
pub(crate) async fn fetch(
    client: &Client,
    cx: &ListenContext,
    inbound: &Inbound,
    media: &Media,
) -> Option<InboundFile> {
    let request = MediaRequestParameters { source: media.source.clone(), format: MediaFormat::File };
    let bytes = match client.media().get_media_content(&request, false).await {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::warn!(%error, file = %media.name, "cannot fetch a file from the homeserver");
            cx.tell_file_refused(inbound, &media.name, "the homeserver did not hand it to the bot").await;
            return None;
        }
    };
    loop {
        match cx.upload(&media.name, &media.media_type, bytes.clone()).await {
            Ok(uploaded) => return Some(uploaded),
            Err(UploadError::Refused(reason)) => {
                cx.tell_file_refused(inbound, &media.name, &reason).await;
                return None;
            }
            Err(error) => {
                tracing::warn!(%error, file = %media.name, "cannot upload a file to gorpd; trying again");
                tokio::select! {
                    _ = cx.shutdown().cancelled() => return None,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

/// Sends `file` to `room` as Matrix media with transaction id `txn_id`,
/// replying to `reply_to` (in its thread, if any); returns its event id.
pub(crate) async fn send(
    room: &Room,
    file: &OutboundFile,
    txn_id: OwnedTransactionId,
    reply_to: Option<OwnedEventId>,
) -> Result<OwnedEventId, matrix_sdk::Error> {
    let media_type = file.media_type.parse::<mime::Mime>().unwrap_or(mime::APPLICATION_OCTET_STREAM);
    let reply = reply_to.map(|event_id| Reply {
        event_id,
        enforce_thread: EnforceThread::MaybeThreaded,
        add_mentions: AddMentions::No,
    });
    let config = AttachmentConfig::new().txn_id(txn_id).reply(reply);
    let sent = room.send_attachment(file.name.as_str(), &media_type, file.bytes.to_vec(), config).await?;
    Ok(sent.event_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use matrix_sdk::ruma::events::room::message::{FileMessageEventContent, ImageMessageEventContent};
    use matrix_sdk::ruma::events::room::{ImageInfo, MediaSource};
    use matrix_sdk::ruma::owned_mxc_uri;

    #[test]
    fn an_image_with_a_caption_gives_its_name_type_and_text() {
        let mut content = ImageMessageEventContent::plain("look at this".to_owned(), owned_mxc_uri!("mxc://x.org/abc"));
        content.filename = Some("shot.png".to_owned());
        let mut info = ImageInfo::new();
        info.mimetype = Some("image/png".to_owned());
        content.info = Some(Box::new(info));
        let (media, caption) = of_message(&MessageType::Image(content)).unwrap();
        assert_eq!((media.name.as_str(), media.media_type.as_str()), ("shot.png", "image/png"));
        assert_eq!(caption, "look at this");
        assert!(matches!(media.source, MediaSource::Plain(_)));
    }

    #[test]
    fn a_file_without_caption_or_type_is_octet_stream_with_no_text() {
        let content = FileMessageEventContent::plain("notes.txt".to_owned(), owned_mxc_uri!("mxc://x.org/def"));
        let (media, caption) = of_message(&MessageType::File(content)).unwrap();
        assert_eq!((media.name.as_str(), media.media_type.as_str()), ("notes.txt", "application/octet-stream"));
        assert_eq!(caption, "");
        assert!(of_message(&MessageType::text_plain("hi")).is_none());
    }
}
