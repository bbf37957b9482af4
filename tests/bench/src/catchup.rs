//! A month offline, caught up: a clinic node holding `changes` local changes (patients
//! created and then edited, through the store's real write path) syncs once with a
//! hub over real QUIC with mutual TLS on loopback; the figure is the time until the
//! hub has committed and acknowledged everything. Then, in the same run: the hub
//! folding that log into its documents and projections, and a replacement node for the
//! same clinic downloading all of it (another site would receive none of these
//! patients: they have no business there).

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use healsync_auth::SessionKeys;
use healsync_domain::SiteCode;
use healsync_hub_store::HubStore;
use healsync_hub_sync::HubSyncStorage;
use healsync_node_api::Node;
use healsync_store::Store;
use healsync_sync_transport::ca::HubCa;
use healsync_sync_transport::{config, driver};
use healsync_test_support::seed::{self, Rng};

/// Edits per patient after its creation: ten changes per document in all.
const EDITS: usize = 9;

async fn node(
    site: &str,
    hub: &HubStore,
    ca: &HubCa,
) -> Result<(Node, quinn::Endpoint, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), Some(&SiteCode::parse(site)?))?;
    let node_id = store.identity().node_id;
    hub.enroll(&hub.create_enrollment_token(site).await?, node_id)
        .await?;
    let creds = ca.issue_node(node_id, site)?;
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
    endpoint.set_default_client_config(config::client(ca.cert_pem(), &creds)?);
    let keys = SessionKeys::load_or_create(dir.path(), site)?;
    let node = Node::new(Arc::new(store), keys).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok((node, endpoint, dir))
}

pub async fn run(admin_url: String, changes: usize) -> Result<()> {
    let db = healsync_test_support::TestDatabase::create_on(&admin_url, "catchup").await?;
    let hub = HubStore::connect(&db.url, 8).await?;
    hub.add_site("NBO", "Nairobi").await?;
    let ca_dir = tempfile::tempdir()?;
    let ca = Arc::new(HubCa::load_or_create(ca_dir.path())?);
    let endpoint = quinn::Endpoint::server(
        config::server(ca.cert_pem(), &ca.issue_hub()?)?,
        "127.0.0.1:0".parse()?,
    )?;
    let addr = endpoint.local_addr()?;
    tokio::spawn(driver::run_hub(
        endpoint,
        Arc::new(HubSyncStorage {
            store: hub.clone(),
            ca: ca.clone(),
            committed: Default::default(),
        }),
        16,
    ));

    let (nbo, nbo_endpoint, _nbo_dir) = node("NBO", &hub, &ca).await?;
    let patients = changes.div_ceil(EDITS + 1);
    let t = Instant::now();
    let mut rng = Rng(0x5eed);
    let store = nbo.store().clone();
    let written = tokio::task::spawn_blocking(move || -> Result<usize> {
        let ids = seed::patients(&store, "NBO", 0, patients, &mut rng)?;
        let mut written = ids.len();
        let now = chrono::Utc::now();
        'edits: for round in 0..EDITS {
            for chunk in ids.chunks(seed::BATCH) {
                store.write(now, |tx| {
                    for id in chunk {
                        let Some(mut p) = healsync_store::queries::patient(tx.conn(), *id)? else {
                            continue;
                        };
                        p.phone = Some(format!("+254 7{:02}{:06}", round, written % 1_000_000));
                        tx.put(&p)?;
                    }
                    Ok::<_, healsync_store::StoreError>(())
                })?;
                written += chunk.len();
                if written >= changes {
                    break 'edits;
                }
            }
        }
        Ok(written)
    })
    .await??;
    println!(
        "seeded {written} local changes ({patients} patients, up to {} changes each) in {:.1} s",
        EDITS + 1,
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let summary = healsync_node_sync::sync_once(&nbo, &nbo_endpoint, addr, None)
        .await
        .context("upload round")?;
    let up = t.elapsed().as_secs_f64();
    println!(
        "upload: {} changes committed and acknowledged by the hub in {up:.2} s ({:.0} changes/s)",
        summary.uploaded,
        summary.uploaded as f64 / up
    );
    println!(
        "        the issue's budget is 3 s; PouchDB to a CouchDB-compatible server took about 23 s for 100,000 documents here"
    );

    let t = Instant::now();
    let folded = hub.materialize_all().await?;
    let fold = t.elapsed().as_secs_f64();
    println!(
        "hub projections: {folded} log entries folded into documents in {fold:.2} s ({:.0}/s), after the acknowledgement",
        folded as f64 / fold
    );

    let (fresh, fresh_endpoint, _fresh_dir) = node("NBO", &hub, &ca).await?;
    let t = Instant::now();
    let down = healsync_node_sync::sync_once(&fresh, &fresh_endpoint, addr, None)
        .await
        .context("download round")?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "download: a replacement node for the clinic merged {} changes in {secs:.2} s ({:.0} changes/s)",
        down.downloaded,
        down.downloaded as f64 / secs
    );
    println!(
        "ratios in this run: download/upload {:.1}x, projections/upload {:.1}x",
        secs / up,
        fold / up
    );
    hub.pool().close().await;
    db.drop_database().await?;
    Ok(())
}
