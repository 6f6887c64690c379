//! The assistant's OpenAI-compatible client over real TLS: a local HTTPS server with a
//! certificate this test makes (openssl CLI), trusted through `SSL_CERT_FILE`, which the
//! client's system-roots loader reads (on Lambda it reads the image's CA bundle the same
//! way). A second server with a certificate nobody trusts must be refused. Its own test
//! binary: the variable is set before the client's once-per-process setup.

use realtime_domain::chat::assistant::{Conversation, ConversationMessage};
use realtime_domain::config::{AssistantProvider, Config};
use realtime_edge::assistant;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn openssl(args: &[&str], dir: &Path) {
    let status = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl {args:?} failed");
}

/// A CA (`{name}-ca.pem`) and a `localhost` certificate it signed (`{name}.pem`, `{name}.key`).
fn make_cert(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let (ca, ca_key) = (format!("{name}-ca.pem"), format!("{name}-ca.key"));
    let (leaf, key, csr, ext) = (
        format!("{name}.pem"),
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.ext"),
    );
    let subject = format!("/CN={name} test CA");
    openssl(
        &[
            &["req", "-x509", "-days", "1", "-subj", &subject, "-keyout", &ca_key, "-out", &ca],
            &ec[..],
        ]
        .concat(),
        dir,
    );
    openssl(
        &[&["req", "-subj", "/CN=localhost", "-keyout", &key, "-out", &csr], &ec[..]].concat(),
        dir,
    );
    std::fs::write(dir.join(&ext), "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n").unwrap();
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            &ext,
            "-out",
            &leaf,
        ],
        dir,
    );
    (dir.join(ca), dir.join(leaf), dir.join(key))
}

/// An HTTPS server on 127.0.0.1 answering every request with one chat completion; its port.
async fn serve(cert: &Path, key: &Path) -> u16 {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert).unwrap().map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                // Read the head and the body its Content-Length announces.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = tls.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let body = r#"{"choices":[{"message":{"role":"assistant","content":"Hello over TLS"}}]}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

#[tokio::test]
async fn the_openai_client_speaks_tls_and_refuses_an_untrusted_certificate() {
    let dir = std::env::temp_dir().join(format!("assistant-tls-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&dir).unwrap();
    let (trusted_ca, trusted_cert, trusted_key) = make_cert(&dir, "trusted");
    let (_, other_cert, other_key) = make_cert(&dir, "other");
    // Only the first CA is a root the client trusts. Set before the client exists.
    std::env::set_var("SSL_CERT_FILE", &trusted_ca);
    std::env::remove_var("SSL_CERT_DIR");
    let trusted = serve(&trusted_cert, &trusted_key).await;
    let untrusted = serve(&other_cert, &other_key).await;

    let conversation = Conversation {
        chat_title: "TLS".into(),
        messages: vec![ConversationMessage {
            role: "user".into(),
            name: "alice".into(),
            content: "hi".into(),
        }],
    };
    let provider_at = |port: u16| {
        let mut cfg = Config::local("x").chat.assistant;
        cfg.provider = AssistantProvider::OpenAi {
            base_url: format!("https://localhost:{port}/v1"),
            model: "m".into(),
            api_key: None,
        };
        assistant::provider(&cfg)
    };
    let reply = provider_at(trusted).reply(&conversation).await.expect("a reply over TLS");
    assert_eq!(reply, "Hello over TLS");
    let refused = provider_at(untrusted)
        .reply(&conversation)
        .await
        .expect_err("an untrusted certificate is refused");
    assert!(refused.to_string().contains("UnknownIssuer"), "{refused}");
    let _ = std::fs::remove_dir_all(&dir);
}
