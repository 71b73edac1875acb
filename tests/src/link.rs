//! A network link a test can cut: a TCP relay on a loopback port to one
//! upstream address (a replica's way to etcd, say). Cut, it forwards
//! nothing either way and answers nothing, but keeps every connection
//! open, as a network that drops packets does: the ends learn of it only
//! from their own timeouts. Healed, it forwards again; connections that
//! lived through the cut are closed then, as a partition longer than TCP's
//! patience ends them, so nothing sent into the cut arrives late.

use std::sync::Arc;

use tokio::{
    io::copy_bidirectional,
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

/// A relay to one upstream address; stops when dropped.
pub struct Link {
    url: String,
    state: Arc<watch::Sender<State>>,
    relay: JoinHandle<()>,
}

/// Whether the link forwards, and how many cuts it has had, so that a
/// connection knows whether a cut came while it was open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    cut: bool,
    cuts: u64,
}

impl Link {
    /// A link on a free loopback port to `upstream` (`host:port`, or a URL
    /// such as `http://127.0.0.1:2379`), forwarding.
    pub async fn start(upstream: &str) -> Link {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the link");
        let address = listener.local_addr().expect("a bound port");
        let (state, _) = watch::channel(State {
            cut: false,
            cuts: 0,
        });
        let state = Arc::new(state);
        let relay = tokio::spawn(accept(listener, upstream, state.clone()));
        Link {
            url: format!("http://{address}"),
            state,
            relay,
        }
    }

    /// Where to connect instead of upstream, as `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops forwarding: what is sent either way, and new connections,
    /// wait in silence.
    pub fn cut(&self) {
        self.state.send_modify(|state| {
            state.cut = true;
            state.cuts += 1;
        });
    }

    /// Forwards again, to new connections; those open during the cut are
    /// closed.
    pub fn heal(&self) {
        self.state.send_modify(|state| state.cut = false);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.relay.abort();
    }
}

/// Takes each connection and relays it to `upstream`.
async fn accept(listener: TcpListener, upstream: String, state: Arc<watch::Sender<State>>) {
    while let Ok((inbound, _)) = listener.accept().await {
        tokio::spawn(relay(inbound, upstream.clone(), state.subscribe()));
    }
}

/// Relays one connection while the link is whole: waits (silent) while it
/// is cut, connects upstream once it is not, and stops relaying, keeping
/// the connection open, when it is cut; a connection open across a cut is
/// closed when the link heals.
async fn relay(mut inbound: TcpStream, upstream: String, mut state: watch::Receiver<State>) {
    let Ok(whole) = state.wait_for(|s| !s.cut).await.map(|s| *s) else {
        return;
    };
    let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
        return;
    };
    let cut = tokio::select! {
        _ = copy_bidirectional(&mut inbound, &mut outbound) => false,
        _ = state.wait_for(|s| s.cut) => true,
    };
    if cut {
        // Silent until the link heals, then gone.
        let _ = state.wait_for(|s| !s.cut && s.cuts > whole.cuts).await;
    }
}
