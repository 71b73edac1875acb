//! Connections shared by the loops of one measurement. Each frontend on its
//! own connection is the default; frontends multiplexed on HTTP/2
//! connections (`--frontends-per-connection`) show what the transport costs
//! per call when many calls share each read and write.

use std::future::Future;

/// `per_connection` loops on each connection, in loop-index order.
#[derive(Clone)]
pub(crate) struct Connections<T> {
    opened: Vec<T>,
    per_connection: usize,
}

impl<T: Clone> Connections<T> {
    /// Opens enough connections for `clients` loops with `connect`.
    pub(crate) async fn open<F, Fut>(
        clients: usize,
        per_connection: usize,
        connect: F,
    ) -> anyhow::Result<Connections<T>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = anyhow::Result<T>>,
    {
        let per_connection = per_connection.max(1);
        let mut opened = Vec::new();
        for _ in 0..clients.div_ceil(per_connection) {
            opened.push(connect().await?);
        }
        Ok(Connections {
            opened,
            per_connection,
        })
    }

    /// The connection of loop `index`.
    pub(crate) fn get(&self, index: usize) -> T {
        self.opened[index / self.per_connection].clone()
    }
}
