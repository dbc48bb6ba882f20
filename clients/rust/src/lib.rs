//! `gorp-client`: the Rust client library of gorp's gRPC API (`gorp.v1`).
//!
//! What it does once, correctly, so applications do not have to:
//!
//! - **Connecting** ([`Client::builder`]): `http://` or `https://` (system
//!   roots plus an optional CA file), the bearer token from the caller,
//!   `GORP_TOKEN` or a local gorpd's `admin.token`, `TCP_NODELAY` and HTTP/2
//!   keepalive.
//! - **Publishing** ([`Publisher`]): a window of messages in flight, acks
//!   matched in order, everything unacknowledged sent again after a
//!   reconnect, DUPLICATE counted as success, a refused message reported for
//!   that message alone ([`Error::Rejected`]).
//! - **Subscribing** ([`Subscription`]): hello with a gateway id and an
//!   optional cursor, deliveries as a stream with ack handles, reconnects
//!   that resume after the last acked `seq`, and [`Event::CaughtUp`] when
//!   replay turns live.
//! - **Binding** ([`BindFeed`]) and the common **Control** calls
//!   ([`Client::create_session`], [`Client::bind`], [`Client::history`], ...),
//!   with the generated clients at hand for the rest ([`Client::control_api`]).
//!
//! Errors are one type, [`Error`], which keeps gorpd's gRPC status.
//!
//! ```no_run
//! use gorp_client::{Channel, Client, Event, Message, Subscribe};
//!
//! # async fn example() -> Result<(), gorp_client::Error> {
//! // The admin token of a gorpd on this machine is found by itself.
//! let client = Client::builder("http://127.0.0.1:7730").connect().await?;
//! client.create_session("research").await?;
//! let room = Channel::new("myapp", "room-1");
//! client.bind(room.clone(), "research").await?;
//!
//! let mut replies = client.subscribe(Subscribe::new("myapp").gateway_id("myapp-1")).await?;
//! let publisher = client.publisher();
//! publisher.publish(&Message::new(room, "m-1", "hello").sender("u1", "Ada")).await?;
//!
//! while let Some(event) = replies.next().await {
//!     if let Event::Response(reply) = event? {
//!         println!("{}: {}", reply.session, reply.text);
//!         reply.ack();
//!         break;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! The library needs a Tokio runtime. For `https://`, install a rustls
//! crypto provider first if more than one is compiled into the program
//! (`rustls::crypto::ring::default_provider().install_default()`).

mod bind;
mod connect;
mod control;
mod error;
mod files;
mod local;
mod publisher;
pub mod raw;
mod retry;
mod subscription;
mod types;

pub use bind::{BindFeed, BindingChange};
pub use connect::{AuthChannel, BearerToken, BusApi, Client, ClientBuilder, ControlApi, TOKEN_ENV};
pub use control::{HistoryEntry, SessionInfo};
pub use error::{Error, describe};
pub use files::{Attachment, INLINE_MAX_BYTES, UPLOAD_CHUNK_BYTES, Uploaded, media_type_of};
pub use local::{ADMIN_TOKEN_FILE, MAX_AGE_NUMBER, default_data_dir, parse_age_secs};
pub use publisher::{PendingAck, Publisher, PublisherOptions};
pub use subscription::{Delivery, Event, Subscribe, Subscription};
pub use types::{Channel, Chunk, Message, Published, Response, ResponseKind};

/// The generated `gorp.v1` types and clients, for calls this crate does not wrap.
pub use gorp_proto::v1 as proto;

impl Client {
    /// A [`Publisher`] with the default window (256 in flight).
    pub fn publisher(&self) -> Publisher {
        Publisher::start(self.clone(), PublisherOptions::default())
    }

    /// A [`Publisher`] with `options`.
    pub fn publisher_with(&self, options: PublisherOptions) -> Publisher {
        Publisher::start(self.clone(), options)
    }

    /// Opens a [`Subscription`]; fails here for a bad token, a platform the
    /// token may not read, or an unreachable gorpd.
    pub async fn subscribe(&self, subscribe: Subscribe) -> Result<Subscription, Error> {
        Subscription::open(self.clone(), subscribe).await
    }

    /// Opens a [`BindFeed`].
    pub async fn bind_feed(&self) -> Result<BindFeed, Error> {
        BindFeed::open(self).await
    }
}
