//! A flaky link for fault tests: a UDP proxy on loopback between one client and one
//! server that drops, duplicates and delays datagrams (delays reorder them), from a
//! seeded generator. It forwards to the most recent client address, so a new client
//! process (a new source port) takes over the link. It stops when dropped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::UdpSocket;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::seed::Rng;

/// How bad the link is, per datagram and direction.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// Per-mille of datagrams dropped.
    pub drop: u64,
    /// Per-mille of datagrams sent twice.
    pub duplicate: u64,
    /// Per-mille of datagrams held back by up to `max_delay` (which reorders them).
    pub delay: u64,
    pub max_delay: Duration,
}

/// What the link did, for the test's report.
#[derive(Debug, Default)]
pub struct LinkStats {
    pub forwarded: AtomicU64,
    pub dropped: AtomicU64,
    pub duplicated: AtomicU64,
    pub delayed: AtomicU64,
}

pub struct FlakyLink {
    /// Where clients send to.
    pub addr: SocketAddr,
    pub stats: Arc<LinkStats>,
    task: JoinHandle<()>,
}

impl Drop for FlakyLink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn per_mille(rng: &mut Rng, p: u64) -> bool {
    rng.next_u64() % 1000 < p
}

impl FlakyLink {
    /// Listens on a loopback port and forwards to `server` with `faults`.
    pub async fn start(server: SocketAddr, seed: u64, faults: Faults) -> Result<FlakyLink> {
        let front = Arc::new(
            UdpSocket::bind("127.0.0.1:0")
                .await
                .context("bind the link")?,
        );
        let back = Arc::new(
            UdpSocket::bind("127.0.0.1:0")
                .await
                .context("bind the link")?,
        );
        back.connect(server).await.context("aim the link")?;
        let addr = front.local_addr()?;
        let stats = Arc::new(LinkStats::default());
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let rng = Arc::new(Mutex::new(Rng(seed | 1)));
        let task = {
            let stats = stats.clone();
            tokio::spawn(async move {
                let mut up = vec![0u8; 65536];
                let mut down = vec![0u8; 65536];
                loop {
                    tokio::select! {
                        r = front.recv_from(&mut up) => {
                            let Ok((n, from)) = r else { return };
                            *client.lock().await = Some(from);
                            let b = back.clone();
                            pass(up[..n].to_vec(), &rng, faults, &stats, move |d| {
                                let b = b.clone();
                                async move { let _ = b.send(&d).await; }
                            }).await;
                        }
                        r = back.recv(&mut down) => {
                            let Ok(n) = r else { return };
                            let Some(to) = *client.lock().await else { continue };
                            let f = front.clone();
                            pass(down[..n].to_vec(), &rng, faults, &stats, move |d| {
                                let f = f.clone();
                                async move { let _ = f.send_to(&d, to).await; }
                            }).await;
                        }
                    }
                }
            })
        };
        Ok(FlakyLink { addr, stats, task })
    }
}

/// Decides one datagram's fate and sends it (now, later, twice, or never).
async fn pass<F, Fut>(
    datagram: Vec<u8>,
    rng: &Mutex<Rng>,
    faults: Faults,
    stats: &LinkStats,
    send: F,
) where
    F: Fn(Vec<u8>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let (drop, dup, delay) = {
        let mut r = rng.lock().await;
        let drop = per_mille(&mut r, faults.drop);
        let dup = per_mille(&mut r, faults.duplicate);
        let delay = if per_mille(&mut r, faults.delay) {
            let max = u64::try_from(faults.max_delay.as_micros())
                .unwrap_or(u64::MAX)
                .max(1);
            Some(Duration::from_micros(r.next_u64() % max))
        } else {
            None
        };
        (drop, dup, delay)
    };
    if drop {
        stats.dropped.fetch_add(1, Ordering::Relaxed);
        return;
    }
    stats.forwarded.fetch_add(1, Ordering::Relaxed);
    let copies = if dup {
        stats.duplicated.fetch_add(1, Ordering::Relaxed);
        2
    } else {
        1
    };
    match delay {
        Some(wait) => {
            stats.delayed.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                for _ in 0..copies {
                    send(datagram.clone()).await;
                }
            });
        }
        None => {
            for _ in 0..copies {
                send(datagram.clone()).await;
            }
        }
    }
}
