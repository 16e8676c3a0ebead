//! A stand-in for MP on a real socket that gives every request the same
//! canned answer, or drops the connection after reading the request: the
//! shapes of MP's answers the sandbox never produces.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the double does with every request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// HTTP 200 with this JSON body.
    Json(String),
    /// This HTTP status with this body and content type.
    Status(u16, &'static str, String),
    /// Reads the whole request, then closes the connection without answering.
    Drop,
    /// 200 with the JSON of the first entry whose MP path suffix (e.g.
    /// `"/queryTraffic"`) the request's path ends with; 404 for any other path.
    ByPath(Vec<(&'static str, serde_json::Value)>),
    /// Waits this long after reading the request, then answers as the inner reply.
    Slow(std::time::Duration, Box<Reply>),
}

/// A request the double read: its request line and body.
#[derive(Debug, Clone)]
#[allow(dead_code, reason = "read by tests through Debug")]
pub struct Seen {
    pub request_line: String,
    pub body: String,
}

pub struct MpDouble {
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl MpDouble {
    pub async fn start(reply: Reply) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, reply.clone(), log.clone()));
            }
        });
        Self { addr, seen }
    }

    /// A double answering `v2/activationCode`-style data with code 200.
    pub async fn created(data: serde_json::Value) -> Self {
        let body =
            serde_json::json!({"code": 200, "msg": "Success", "data": data, "requestId": null});
        Self::start(Reply::Json(body.to_string())).await
    }

    /// [`MpDouble::created`] that answers `delay` after reading each request.
    pub async fn slowly_created(delay: std::time::Duration, data: serde_json::Value) -> Self {
        let body =
            serde_json::json!({"code": 200, "msg": "Success", "data": data, "requestId": null});
        Self::start(Reply::Slow(delay, Box::new(Reply::Json(body.to_string())))).await
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many requests reached the double.
    pub fn calls(&self) -> usize {
        self.seen.lock().expect("not poisoned").len()
    }
}

async fn serve(mut stream: TcpStream, reply: Reply, seen: Arc<Mutex<Vec<Seen>>>) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    let path = request
        .request_line
        .split(' ')
        .nth(1)
        .and_then(|target| target.split('?').next())
        .unwrap_or_default()
        .to_owned();
    seen.lock().expect("not poisoned").push(request);
    let mut reply = reply;
    while let Reply::Slow(delay, inner) = reply {
        tokio::time::sleep(delay).await;
        reply = *inner;
    }
    let (status, content_type, body) = match reply {
        Reply::Drop => return,
        Reply::ByPath(answers) => match answers.iter().find(|(suffix, _)| path.ends_with(suffix)) {
            Some((_, json)) => (200, "application/json", json.to_string()),
            None => (404, "application/json", "null".to_owned()),
        },
        Reply::Json(body) => (200, "application/json", body),
        Reply::Status(status, content_type, body) => (status, content_type, body),
        Reply::Slow(..) => unreachable!("slow replies were unwrapped above"),
    };
    let response = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Reads one HTTP/1.1 request with a `content-length` body (or none).
async fn read_request(stream: &mut TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(Seen {
        request_line: head.lines().next().unwrap_or_default().to_owned(),
        body: String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned(),
    })
}
