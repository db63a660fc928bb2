//! A fault-injecting LDAPS front for a real slapd: Roster connects to it over TLS (a
//! generated certificate: the profile ignores TLS errors), it forwards every byte to
//! slapd's plain port, and it reads the LDAP messages coming back so it can misbehave at
//! the right moment — after the first page of a paged search.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Debug)]
pub enum Fault {
    /// Forward faithfully.
    None,
    /// Remove the controls (the paged-results cookie) from the first page's result.
    StripFirstPageControls,
    /// SIGSTOP this process (slapd) when the first page's result passes: the next page
    /// is asked of a server that no longer answers.
    StopServerAfterFirstPage { pid: u32 },
}

pub struct LdapProxy {
    /// `127.0.0.1:port`, for the profile's server field (protocol LDAPS).
    pub server: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LdapProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listens on a free port and serves each connection against `upstream` (`host:port`).
pub async fn start(upstream: &str, fault: Fault) -> LdapProxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let server = listener.local_addr().expect("addr").to_string();
    let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).expect("cert");
    let tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![key.cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into()),
        )
        .expect("tls config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let upstream = upstream.to_owned();
    let task = tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (acceptor, upstream, fault) = (acceptor.clone(), upstream.clone(), fault.clone());
            tokio::spawn(async move {
                let Ok(client) = acceptor.accept(client).await else {
                    return;
                };
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                serve(client, server, fault).await;
            });
        }
    });
    LdapProxy { server, task }
}

async fn serve(
    client: tokio_rustls::server::TlsStream<TcpStream>,
    server: TcpStream,
    fault: Fault,
) {
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut server_read, mut server_write) = server.into_split();
    let upward = async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    };
    let downward = async move {
        let mut pending = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut pages = 0usize;
        loop {
            let Ok(n) = server_read.read(&mut buf).await else {
                return;
            };
            if n == 0 {
                return;
            }
            pending.extend_from_slice(&buf[..n]);
            while let Some(len) = message_len(&pending) {
                let mut message: Vec<u8> = pending.drain(..len).collect();
                if let Some(controls_at) = paged_result_done(&message) {
                    pages += 1;
                    if pages == 1 {
                        match &fault {
                            Fault::None => {}
                            Fault::StripFirstPageControls => {
                                message = without_controls(&message, controls_at);
                            }
                            Fault::StopServerAfterFirstPage { pid } => {
                                let _ = std::process::Command::new("kill")
                                    .args(["-STOP", &pid.to_string()])
                                    .status();
                            }
                        }
                    }
                }
                // TLS buffers what is written: flush each message.
                if client_write.write_all(&message).await.is_err()
                    || client_write.flush().await.is_err()
                {
                    return;
                }
            }
        }
    };
    tokio::join!(upward, downward);
}

/// (header length, content length) of the BER element at the start of `bytes`.
fn header(bytes: &[u8]) -> Option<(usize, usize)> {
    let first = *bytes.get(1)?;
    if first < 0x80 {
        return Some((2, first as usize));
    }
    let n = (first & 0x7f) as usize;
    let len = bytes
        .get(2..2 + n)?
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | *b as usize);
    Some((2 + n, len))
}

/// The length of the first complete LDAP message in `bytes`, if it is all there.
fn message_len(bytes: &[u8]) -> Option<usize> {
    let (h, len) = header(bytes)?;
    (bytes.len() >= h + len).then_some(h + len)
}

/// For a SearchResultDone that carries controls: where the controls start.
fn paged_result_done(message: &[u8]) -> Option<usize> {
    let (h, _) = header(message)?;
    let id = &message[h..];
    let (ih, ilen) = header(id)?;
    let op_at = h + ih + ilen;
    if *message.get(op_at)? != 0x65 {
        return None;
    }
    let (oh, olen) = header(&message[op_at..])?;
    let controls_at = op_at + oh + olen;
    (message.get(controls_at) == Some(&0xa0)).then_some(controls_at)
}

/// The same message without its controls, its outer length re-encoded.
fn without_controls(message: &[u8], controls_at: usize) -> Vec<u8> {
    let (h, _) = header(message).expect("header");
    let body = &message[h..controls_at];
    let mut out = vec![0x30];
    if body.len() < 0x80 {
        out.push(body.len() as u8);
    } else {
        let bytes = (body.len() as u32).to_be_bytes();
        out.push(0x84);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(body);
    out
}
