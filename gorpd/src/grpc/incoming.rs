//! The gRPC listener's accepted connections, under limits that keep slow or
//! idle clients from holding it (Slowloris).
//!
//! At most `max_connections` are open at once: while all are taken nothing
//! more is accepted, and new connections wait in the kernel's accept queue
//! until one closes (each connection holds its slot until it is dropped). A
//! client must send its first [`OPENING_BYTES`] (the HTTP/2 preface, or a TLS
//! hello) within `opening_timeout` or its connection fails. Every accepted
//! socket has `TCP_NODELAY`: small gRPC frames (acks, deliveries) leave at once.

use futures::Stream;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Bytes a client must send before `opening_timeout`: the length of the HTTP/2 preface.
pub(super) const OPENING_BYTES: usize = 24;

/// One accepted connection and its slot.
#[derive(Debug)]
pub(super) struct LimitedConnection {
    tcp: TcpStream,
    /// Pending until the client sent [`OPENING_BYTES`]; `None` after.
    opening: Option<(Pin<Box<Sleep>>, usize)>,
    _slot: OwnedSemaphorePermit,
}

/// Accepts connections from `listener`, at most `max_connections` open at once.
pub(super) fn accept_limited(
    listener: TcpListener,
    max_connections: usize,
    opening_timeout: Duration,
) -> impl Stream<Item = io::Result<LimitedConnection>> {
    let slots = Arc::new(Semaphore::new(max_connections));
    futures::stream::unfold((listener, slots), move |(mut listener, slots)| async move {
        // A slot first, so a full listener leaves new connections in the accept queue.
        let slot = slots.clone().acquire_owned().await.expect("the slots are never closed");
        // axum's accept waits out transient errors (such as too many open files).
        let (tcp, _) = axum::serve::Listener::accept(&mut listener).await;
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
        let opening = Some((Box::pin(tokio::time::sleep(opening_timeout)), 0));
        Some((Ok(LimitedConnection { tcp, opening, _slot: slot }), (listener, slots)))
    })
}

impl AsyncRead for LimitedConnection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let read = Pin::new(&mut this.tcp).poll_read(cx, buf);
        let Some((deadline, received)) = &mut this.opening else { return read };
        if let Poll::Ready(Ok(())) = read {
            *received += buf.filled().len() - before;
            if *received >= OPENING_BYTES {
                this.opening = None;
            }
            return read;
        }
        if read.is_pending() && deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client sent too little in time to open a gRPC connection",
            )));
        }
        read
    }
}

impl AsyncWrite for LimitedConnection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

impl Connected for LimitedConnection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.tcp.connect_info()
    }
}
