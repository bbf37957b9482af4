//! Hub ingest: 100,000 changes committed into PostgreSQL in upload batches, as a node
//! catching up after a month offline would send them (store level: no network).

use std::time::Instant;

use anyhow::Result;
use healsync_hub_store::HubStore;
use healsync_sync_protocol::Change;
use uuid::Uuid;

pub async fn run(admin_url: String, changes: usize, batch: usize) -> Result<()> {
    let db = healsync_test_support::TestDatabase::create_on(&admin_url, "bench").await?;
    let store = HubStore::connect(&db.url, 4).await?;
    store.add_site("NBO", "Nairobi").await?;
    let token = store.create_enrollment_token("NBO").await?;
    let node = Uuid::now_v7();
    store.enroll(&token, node).await?;

    // About ten changes per document, each a real automerge change of about 100
    // bytes (a single-field commit is about 110): the hub checks that every change
    // loads and matches its hash.
    let docs: Vec<Uuid> = (0..changes.div_ceil(10)).map(|_| Uuid::now_v7()).collect();
    let all: Vec<Change> = (0..changes)
        .map(|i| {
            let kind = if i % 3 == 0 { "patient" } else { "appointment" };
            healsync_test_support::seed::change(i as u64 + 1, docs[i / 10], kind, 1)
        })
        .collect();
    let t = Instant::now();
    for chunk in all.chunks(batch) {
        let through = chunk.last().map_or(0, |c| c.seq);
        store.commit_upload(node, chunk, through).await?;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "hub ingest: {changes} changes in {batch}-change batches committed in {secs:.2} s = {:.0} changes/s",
        changes as f64 / secs
    );
    let t = Instant::now();
    let again = store
        .commit_upload(node, &all[..batch.min(all.len())], batch as u64)
        .await?;
    println!(
        "resending one batch (all duplicates): {:.1} ms, {} refused",
        t.elapsed().as_secs_f64() * 1e3,
        again.len()
    );
    store.pool().close().await;
    db.drop_database().await?;
    Ok(())
}
