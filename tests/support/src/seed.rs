//! Realistic records written through the node store's real write path (document,
//! change log and projections), for benchmarks and fault tests that need volume; and
//! single automerge changes as a node uploads them, for the hub's store tests.

use automerge::transaction::{CommitOptions, Transactable};
use chrono::{DateTime, NaiveDate, Utc};
use healsync_domain::{Address, Patient, PatientId, Sex};
use healsync_store::{Store, StoreError};
use healsync_sync_protocol::Change;
use uuid::Uuid;

/// One real automerge change to `doc` as a node would upload it (local sequence
/// number `seq`): the first change of an author named by `tag` and `seq`, setting a
/// field to `seq`. The same arguments give the same change and hash; different `tag`s
/// give different changes to the same document.
pub fn change(seq: u64, doc: Uuid, kind: &str, tag: u8) -> Change {
    let mut actor = [tag; 16];
    actor[8..].copy_from_slice(&seq.to_le_bytes());
    let mut d = automerge::AutoCommit::new().with_actor(automerge::ActorId::from(actor));
    d.put(automerge::ROOT, "kind", kind)
        .and_then(|()| d.put(automerge::ROOT, "seq", seq))
        .expect("scalars go into a fresh document's root");
    d.commit_with(CommitOptions::default().with_time(0));
    let change = d.get_last_local_change().expect("the change just made");
    let (hash, raw) = (change.hash().0, change.raw_bytes().to_vec());
    Change {
        seq,
        doc_id: *doc.as_bytes(),
        kind: kind.into(),
        hash,
        bytes: raw,
    }
}

const FIRST: &[&str] = &[
    "Amina", "Wanjiru", "Otieno", "Achieng", "Kamau", "Njeri", "Mwangi", "Akinyi", "Kiptoo",
    "Chebet", "Mutua", "Zawadi", "Baraka", "Imani", "Juma", "Halima", "Omondi", "Wairimu",
];
const LAST: &[&str] = &[
    "Njoroge", "Otieno", "Mwangi", "Ochieng", "Kiprono", "Mutiso", "Wekesa", "Omondi", "Hassan",
    "Wafula", "Chege", "Nyambura", "Kariuki", "Barasa", "Ali", "Kimani", "Odhiambo",
];

/// Records written per transaction.
pub const BATCH: usize = 1000;

/// A seeded xorshift generator: the same seed gives the same sequence.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next_u64() % from.len() as u64) as usize]
    }
}

/// The `i`-th made-up patient of `site`.
pub fn patient(site: &str, i: usize, now: DateTime<Utc>, rng: &mut Rng) -> Patient {
    let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
    Patient {
        id: PatientId(Uuid::now_v7()),
        mrn: format!("{site}-{:06}", i + 1),
        site: site.into(),
        name: format!("{first} {last} {i}"),
        email: format!("p{i}@{}.example", site.to_lowercase()),
        phone: Some(format!("+254 7{:08}", rng.next_u64() % 100_000_000)),
        date_of_birth: NaiveDate::from_ymd_opt(
            1940 + (i % 80) as i32,
            1 + (i % 12) as u32,
            1 + (i % 28) as u32,
        ),
        sex: Some(if i.is_multiple_of(2) {
            Sex::Female
        } else {
            Sex::Male
        }),
        address: Address::default(),
        emergency_contact: None,
        allergies: vec![],
        active: true,
        created_at: now,
        updated_at: now,
    }
}

/// Writes `count` patients numbered from `first` into `store`, [`BATCH`] per
/// transaction; returns their ids.
pub fn patients(
    store: &Store,
    site: &str,
    first: usize,
    count: usize,
    rng: &mut Rng,
) -> Result<Vec<PatientId>, StoreError> {
    let now = Utc::now();
    let mut ids = Vec::with_capacity(count);
    let numbers: Vec<usize> = (first..first + count).collect();
    for chunk in numbers.chunks(BATCH) {
        let batch: Vec<Patient> = chunk.iter().map(|&i| patient(site, i, now, rng)).collect();
        store.write(now, |tx| {
            for p in &batch {
                tx.put(p)?;
            }
            Ok::<_, StoreError>(())
        })?;
        ids.extend(batch.iter().map(|p| p.id));
    }
    Ok(ids)
}
