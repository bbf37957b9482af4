//! One load per key type and pass, whatever the runtime; the values reach every
//! resolver; a failed load fails every resolver of the batch; a resolver dropped
//! while it loads for the others does not strand them.

use super::*;
use futures_util::future::join_all;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Squares keys below 1,000 (others are not found), counting loads and their sizes.
#[derive(Default)]
struct Squares {
    loads: Mutex<Vec<usize>>,
    fail: bool,
    /// When set, the first load waits for this before answering.
    gate: Option<Arc<tokio::sync::Notify>>,
    started: AtomicUsize,
    /// The task that ran the first load.
    first_loader: Mutex<Option<tokio::task::Id>>,
}

impl Loader<u32> for Squares {
    type Value = u64;
    type Error = Arc<str>;

    async fn load(&self, keys: &[u32]) -> Result<HashMap<u32, u64>, Arc<str>> {
        let first = self.started.fetch_add(1, Ordering::SeqCst) == 0;
        if first {
            *lock(&self.first_loader) = tokio::task::try_id();
        }
        if let (true, Some(gate)) = (first, &self.gate) {
            gate.notified().await;
        }
        lock(&self.loads).push(keys.len());
        if self.fail {
            return Err("the database is gone".into());
        }
        Ok(keys
            .iter()
            .filter(|&&k| k < 1000)
            .map(|&k| (k, u64::from(k) * u64::from(k)))
            .collect())
    }
}

impl Loader<String> for Squares {
    type Value = u64;
    type Error = Arc<str>;

    async fn load(&self, keys: &[String]) -> Result<HashMap<String, u64>, Arc<str>> {
        lock(&self.loads).push(keys.len());
        Ok(keys.iter().map(|k| (k.clone(), k.len() as u64)).collect())
    }
}

fn loads(b: &Batcher<Squares>) -> Vec<usize> {
    let mut l = lock(&b.loader.loads).clone();
    l.sort_unstable();
    l
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_of_resolvers_is_one_load_and_each_gets_its_own_value() {
    let b = Batcher::new(Squares::default());
    // A list of 200 rows (100 distinct keys, some asked twice, some not found).
    let got =
        join_all((0..200u32).map(|i| b.load_one(i % 100 + if i % 10 == 0 { 5000 } else { 0 })))
            .await;
    for (i, g) in got.into_iter().enumerate() {
        let k = i as u32 % 100 + if i % 10 == 0 { 5000 } else { 0 };
        let expected = (k < 1000).then_some(u64::from(k) * u64::from(k));
        assert_eq!(g, Ok(expected), "row {i}");
    }
    assert_eq!(loads(&b), vec![100], "one load of the distinct keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_level_of_a_nested_query_is_one_load_per_key_type() {
    let b = Batcher::new(Squares::default());
    // Each row loads its number, then from it a name and the next number: two levels.
    let rows = join_all((0..50u32).map(|i| {
        let b = &b;
        async move {
            let sq = b.load_one(i).await?.unwrap_or_default();
            let (name, next) =
                futures_util::join!(b.load_one(format!("row {sq}")), b.load_one(i + 1));
            Ok::<_, Arc<str>>((name?, next?))
        }
    }))
    .await;
    assert!(rows.iter().all(Result::is_ok));
    // Level one: 50 numbers. Level two: 50 names and 50 numbers, one load each.
    assert_eq!(loads(&b), vec![50, 50, 50]);
    let none: Vec<u32> = vec![];
    assert_eq!(b.load_many(none).await, Ok(HashMap::new()));
    assert_eq!(loads(&b), vec![50, 50, 50], "nothing asked, nothing loaded");
}

#[tokio::test]
async fn a_failed_load_fails_every_resolver_of_its_batch_and_only_those() {
    let b = Batcher::new(Squares {
        fail: true,
        ..Squares::default()
    });
    let got = join_all((0..5u32).map(|i| b.load_one(i))).await;
    assert!(
        got.iter()
            .all(|g| g.as_ref().err().map(|e| &**e) == Some("the database is gone"))
    );
    assert_eq!(loads(&b), vec![5]);
    // The next pass is a new batch, loaded again.
    assert!(b.load_one(7).await.is_err());
    assert_eq!(loads(&b), vec![1, 5]);
}

#[tokio::test]
async fn a_resolver_dropped_while_loading_for_others_does_not_strand_them() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let b = Arc::new(Batcher::new(Squares {
        gate: Some(gate.clone()),
        ..Squares::default()
    }));
    // Two requests' resolvers share a batch; the one that starts the load is dropped
    // (its client went away) while the load waits.
    let spawn = |k: u32| {
        let b = b.clone();
        tokio::spawn(async move { b.load_one(k).await })
    };
    let (three, four) = (spawn(3), spawn(4));
    while b.loader.started.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    let loading = *lock(&b.loader.first_loader);
    let (dropped, other, expected) = if loading == Some(three.id()) {
        (three, four, 16)
    } else {
        (four, three, 9)
    };
    dropped.abort();
    assert!(dropped.await.is_err(), "aborted");
    // The other takes the load over and gets its value.
    let other = tokio::time::timeout(std::time::Duration::from_secs(10), other).await;
    assert_eq!(other.ok().and_then(Result::ok), Some(Ok(Some(expected))));
    assert_eq!(
        loads(&b),
        vec![2],
        "the batch was loaded once, for both keys"
    );
    drop(gate);
}
