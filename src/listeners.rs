//! The two listeners' defences against clients that hold connections
//! without using them: each port has its own budget, so a flood of one
//! (say, idle connections to the HTTP port) never starves the other.
//!
//! - HTTP (`HTTP_ADDR`): at most `HTTP_MAX_CONNECTIONS` at once, the excess
//!   closed at once; a request head must arrive within
//!   [`ListenerLimits::http_header_read_timeout`], which also bounds how long
//!   a keep-alive connection may sit idle between requests.
//! - gRPC (`GRPC_ADDR`): a connection that sends nothing (no HTTP/2 preface,
//!   no TLS handshake) within [`ListenerLimits::grpc_preface_timeout`] is closed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures::Stream;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use metrics::{counter, describe_counter};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// `mp_gateway_connections_refused_total{listener}`.
pub const REFUSED: &str = "mp_gateway_connections_refused_total";

/// Registers the descriptions; call once the recorder is installed.
pub fn describe() {
    describe_counter!(
        REFUSED,
        "Connections closed at once or early: listener=http over HTTP_MAX_CONNECTIONS, listener=grpc silent past the preface timeout"
    );
}

/// How long and how many connections each listener allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Most connections open at once on the HTTP port (`HTTP_MAX_CONNECTIONS`).
    pub http_max_connections: usize,
    /// Time for a request head to arrive, and for an idle keep-alive connection.
    pub http_header_read_timeout: Duration,
    /// Time for a gRPC connection's first bytes (HTTP/2 preface or TLS hello).
    pub grpc_preface_timeout: Duration,
}

/// Serves `router` on `listener` until `stop` resolves, then lets the open
/// connections finish their requests (the caller bounds how long).
pub async fn serve_http(
    listener: TcpListener,
    router: axum::Router,
    limits: ListenerLimits,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.http_max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.http_header_read_timeout);
    tokio::pin!(stop);
    loop {
        let stream = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors or the like: the next accept may work.
                Err(error) => {
                    tracing::warn!(%error, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            counter!(REFUSED, "listener" => "http").increment(1);
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that goes away mid-request is no error of ours.
            let _ = connection.await;
            drop(permit);
        });
    }
    graceful.shutdown().await;
    Ok(())
}

/// The gRPC listener's accepted connections, each closed if it stays silent
/// past the preface timeout; Nagle off, as gRPC wants.
pub fn grpc_incoming(
    listener: TcpListener,
    preface_timeout: Duration,
) -> impl Stream<Item = io::Result<PrefaceDeadline>> {
    futures::stream::unfold(listener, move |listener| async move {
        let accepted = loop {
            match listener.accept().await {
                Ok((stream, _)) => break stream,
                Err(error) => {
                    tracing::warn!(%error, "gRPC accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        let _ = accepted.set_nodelay(true);
        Some((
            Ok(PrefaceDeadline::new(accepted, preface_timeout)),
            listener,
        ))
    })
}

/// A TCP stream whose first read fails with `TimedOut` when no byte arrived in time.
pub struct PrefaceDeadline {
    stream: TcpStream,
    /// Until the first byte: then the connection is the server's to time out.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl PrefaceDeadline {
    fn new(stream: TcpStream, timeout: Duration) -> Self {
        Self {
            stream,
            deadline: Some(Box::pin(tokio::time::sleep_until(Instant::now() + timeout))),
        }
    }
}

impl AsyncRead for PrefaceDeadline {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        let Some(deadline) = self.deadline.as_mut() else {
            return read;
        };
        if matches!(read, Poll::Ready(_)) {
            if buf.filled().len() > before {
                self.deadline = None;
            }
            return read;
        }
        ready!(deadline.as_mut().poll(cx));
        counter!(REFUSED, "listener" => "grpc").increment(1);
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no HTTP/2 preface or TLS hello in time",
        )))
    }
}

impl AsyncWrite for PrefaceDeadline {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

impl Connected for PrefaceDeadline {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}
