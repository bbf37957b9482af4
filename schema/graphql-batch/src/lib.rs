//! Batch loading for GraphQL resolvers, without a timer.
//!
//! A list of fifty appointments resolving `patient` must read the patients with one
//! query, not fifty. async-graphql's `DataLoader` gathers keys for a fixed delay (1 ms
//! by default) on a spawned task: every level of a nested query then waits out the
//! delay (measured: a chart read spent half its time asleep), and on a busy or slow
//! machine a pass over the list outlasts the delay and the batch is cut into pieces
//! anyway. A request's resolvers all run in the request's own task, and all the
//! siblings of a list are polled in one pass of it. So [`Batcher`] lets a resolver add
//! its keys to the open batch and yield once: by the time the task runs again, every
//! resolver polled in that pass has added its keys, and the first to resume closes
//! the batch and loads it for all. Nothing sleeps; a lone key costs one yield.
//!
//! Loaders implement async-graphql's [`Loader`] trait. Nothing is cached: a batcher
//! lives for one request (or one subscription), and each batch is read afresh.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub use async_graphql::dataloader::Loader;
use tokio::sync::OnceCell;

/// What a key must be to be gathered into a batch.
pub trait Key: Send + Sync + Hash + Eq + Clone + 'static {}
impl<K: Send + Sync + Hash + Eq + Clone + 'static> Key for K {}

/// The keys gathered for one load of one key type, and its outcome once loaded.
struct Batch<K, V, E> {
    keys: Mutex<HashSet<K>>,
    loaded: OnceCell<Result<Arc<HashMap<K, V>>, E>>,
}

/// Loads what a request's resolvers ask of `T`, one batch per key type and pass.
pub struct Batcher<T> {
    loader: T,
    /// The open batch of each key type (`Arc<Batch<K, ..>>` under `TypeId::of::<K>()`).
    open: Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
}

fn lock<X>(m: &Mutex<X>) -> MutexGuard<'_, X> {
    // A panic while holding the lock leaves sets and maps whole: carry on.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T> Batcher<T> {
    pub fn new(loader: T) -> Self {
        Batcher {
            loader,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The value for `key`, if the loader found one.
    pub async fn load_one<K>(&self, key: K) -> Result<Option<T::Value>, T::Error>
    where
        K: Key,
        T: Loader<K, Value: Sync, Error: Sync>,
    {
        let mut found = self.load_many([key.clone()]).await?;
        Ok(found.remove(&key))
    }

    /// The values found for `keys` (a key the loader did not find is absent).
    pub async fn load_many<K, I>(&self, keys: I) -> Result<HashMap<K, T::Value>, T::Error>
    where
        K: Key,
        I: IntoIterator<Item = K>,
        T: Loader<K, Value: Sync, Error: Sync>,
    {
        let wanted: Vec<K> = keys.into_iter().collect();
        if wanted.is_empty() {
            return Ok(HashMap::new());
        }
        let batch = self.join::<K>(&wanted);
        // Every resolver polled in this pass of the request's task adds its keys first.
        tokio::task::yield_now().await;
        let loaded = batch
            .loaded
            .get_or_init(|| async {
                self.close(&batch);
                let keys: Vec<K> = lock(&batch.keys).iter().cloned().collect();
                self.loader.load(&keys).await.map(Arc::new)
            })
            .await;
        match loaded {
            Ok(all) => Ok(wanted
                .into_iter()
                .filter_map(|k| all.get(&k).cloned().map(|v| (k, v)))
                .collect()),
            Err(e) => Err(e.clone()),
        }
    }

    /// Adds `keys` to the open batch of their type (opening one if none is) and
    /// returns it.
    fn join<K>(&self, keys: &[K]) -> Arc<Batch<K, T::Value, T::Error>>
    where
        K: Key,
        T: Loader<K, Value: Sync, Error: Sync>,
    {
        let mut open = lock(&self.open);
        let slot = open.entry(TypeId::of::<K>()).or_insert_with(|| {
            Box::new(Arc::new(Batch::<K, T::Value, T::Error> {
                keys: Mutex::new(HashSet::new()),
                loaded: OnceCell::new(),
            }))
        });
        let batch = match slot.downcast_ref::<Arc<Batch<K, T::Value, T::Error>>>() {
            Some(b) => b.clone(),
            // Unreachable (the slot of K always holds K's batch); a fresh batch of
            // one is still correct.
            None => Arc::new(Batch {
                keys: Mutex::new(HashSet::new()),
                loaded: OnceCell::new(),
            }),
        };
        // Under the map's lock: a batch gains no key once `close` took it out.
        lock(&batch.keys).extend(keys.iter().cloned());
        batch
    }

    /// Takes `batch` out of the open ones: keys asked for from now on go to the next.
    fn close<K>(&self, batch: &Arc<Batch<K, T::Value, T::Error>>)
    where
        K: Key,
        T: Loader<K, Value: Sync, Error: Sync>,
    {
        let mut open = lock(&self.open);
        let is_open = open
            .get(&TypeId::of::<K>())
            .and_then(|slot| slot.downcast_ref::<Arc<Batch<K, T::Value, T::Error>>>())
            .is_some_and(|b| Arc::ptr_eq(b, batch));
        if is_open {
            open.remove(&TypeId::of::<K>());
        }
    }
}

#[cfg(test)]
mod tests;
