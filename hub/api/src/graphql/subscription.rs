//! Subscriptions: the seed's three (`appointmentUpdated`, `patientUpdated`,
//! `newNotification`) with the node's types, across every replica's changes (see
//! `fanout`), plus the hub's own (`recordChanged`, `conflictRaised`). An admin limited
//! to sites hears of those sites only.

use async_graphql::{Context, ID, Result, Subscription};
use futures_util::Stream;
use healsync_domain::Audience;
use healsync_hub_store::{DocumentChanged, Typed};
use healsync_records::{AnyRecord, RecordKind};
use uuid::Uuid;

use super::query::audience_of_user;
use super::types::*;
use super::{admin, hub, uuid};
use crate::{Hub, HubEvent};

pub struct SubscriptionRoot;

/// The sites an admin sees, owned (for events, which carry the owning site).
type Sites = Option<Vec<String>>;

fn sees(sites: &Sites, site: &str) -> bool {
    sites.as_ref().is_none_or(|s| s.iter().any(|x| x == site))
}

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Appointments booked or changed (arriving from clinics or made here), of one
    /// patient if given, at the sites this admin sees (or one).
    async fn appointment_updated(
        &self,
        ctx: &Context<'_>,
        patient_id: Option<ID>,
        site: Option<String>,
    ) -> Result<impl Stream<Item = AppointmentObj> + use<>> {
        let a = admin(ctx)?;
        let site = a.site_filter(site)?;
        let patient = patient_id
            .as_ref()
            .map(|p| uuid("patientId", p))
            .transpose()?
            .map(|p| p.to_string());
        let sites: Sites = a.sites().map(<[String]>::to_vec);
        Ok(typed_events(
            hub(ctx)?,
            move |d| {
                d.kind == "appointment"
                    && sees(&sites, &d.site)
                    && site.as_ref().is_none_or(|s| *s == d.site)
                    && patient
                        .as_ref()
                        .is_none_or(|p| d.record["patientId"].as_str() == Some(p.as_str()))
            },
            |t| match t.record {
                AnyRecord::Appointment(x) => Some(AppointmentObj(x)),
                _ => None,
            },
        ))
    }

    /// Patients registered or edited (at any site this admin sees, or one patient).
    async fn patient_updated(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
    ) -> Result<impl Stream<Item = PatientObj> + use<>> {
        let a = admin(ctx)?;
        let id = id.as_ref().map(|i| uuid("id", i)).transpose()?;
        let store = hub(ctx)?.store().clone();
        let sites: Sites = a.sites().map(<[String]>::to_vec);
        let hub = hub(ctx)?.clone();
        let rx = hub.subscribe();
        // A patient shared with one of the admin's sites counts too: asked of the
        // store (grants) for a patient registered elsewhere.
        Ok(futures_util::stream::unfold(
            (rx, hub, store, sites),
            move |(mut rx, hub, store, sites)| async move {
                loop {
                    let d = match next_document(&mut rx).await? {
                        d if d.kind == "patient" && id.is_none_or(|i| i == d.doc_id) => d,
                        _ => continue,
                    };
                    let visible = sees(&sites, &d.site)
                        || match store.granted_sites(d.doc_id).await {
                            Ok(g) => g.iter().any(|s| sees(&sites, s)),
                            Err(e) => {
                                tracing::warn!(error = %e, "a subscription could not read grants");
                                false
                            }
                        };
                    if !visible {
                        continue;
                    }
                    if let Some(AnyRecord::Patient(p)) =
                        load(&hub, d.doc_id).await.map(|t| t.record)
                    {
                        return Some((PatientObj(p), (rx, hub, store, sites)));
                    }
                }
            },
        ))
    }

    /// New notifications of an account (a patient's or a doctor's login, or a site's
    /// administrators), at the sites this admin sees.
    async fn new_notification(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
    ) -> Result<impl Stream<Item = NotificationObj> + use<>> {
        let a = admin(ctx)?;
        let target = audience_of_user(ctx, a, &user_id).await?;
        let sites: Sites = a.sites().map(<[String]>::to_vec);
        let (kind, id) = target
            .as_ref()
            .map(|(aud, _)| aud.parts())
            .unwrap_or(("", Uuid::nil()));
        let only_site = match &target {
            Some((Audience::Admins, site)) => Some(site.clone()),
            _ => None,
        };
        let id = id.to_string();
        Ok(typed_events(
            hub(ctx)?,
            move |d| {
                !kind.is_empty()
                    && d.kind == "notification"
                    && sees(&sites, &d.site)
                    && only_site.as_ref().is_none_or(|s| *s == d.site)
                    && d.record["audienceKind"].as_str() == Some(kind)
                    && d.record["audienceId"].as_str() == Some(id.as_str())
            },
            |t| match t.record {
                AnyRecord::Notification(n) => Some(NotificationObj { site: t.site, n }),
                _ => None,
            },
        ))
    }

    /// Records changed at the hub (arriving from nodes or written here), optionally of
    /// one kind or one site, as the generic projection holds them (for diagnosis).
    async fn record_changed(
        &self,
        ctx: &Context<'_>,
        kind: Option<String>,
        site: Option<String>,
    ) -> Result<impl Stream<Item = Record> + use<>> {
        let a = admin(ctx)?;
        let site = a.site_filter(site)?;
        let sites: Sites = a.sites().map(<[String]>::to_vec);
        let rx = hub(ctx)?.subscribe();
        Ok(events(rx, move |e| match e {
            HubEvent::Document(d)
                if !RecordKind::is_clinical_name(&d.kind)
                    && sees(&sites, &d.site)
                    && kind.as_deref().is_none_or(|k| k == d.kind)
                    && site.as_deref().is_none_or(|s| s == d.site) =>
            {
                Some(Record {
                    id: ID(d.doc_id.to_string()),
                    kind: d.kind,
                    site: d.site,
                    heads: d.heads,
                    fields: async_graphql::Json(d.record),
                })
            }
            _ => None,
        }))
    }

    /// New conflicts: fields edited differently at two places, and cross-site
    /// collisions (at the sites this admin sees).
    async fn conflict_raised(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = ConflictRaised> + use<>> {
        let a = admin(ctx)?;
        let sites: Sites = a.sites().map(<[String]>::to_vec);
        let rx = hub(ctx)?.subscribe();
        Ok(events(rx, move |e| match e {
            HubEvent::Document(d) if d.conflicts > 0 && sees(&sites, &d.site) => {
                Some(ConflictRaised {
                    kind: "FIELD".into(),
                    record_id: ID(d.doc_id.to_string()),
                    site: d.site,
                })
            }
            HubEvent::CrossSite(c)
                if sees(&sites, &c.first_site) || sees(&sites, &c.second_site) =>
            {
                Some(ConflictRaised {
                    kind: c.kind,
                    record_id: ID(c.first_appointment.to_string()),
                    site: c.first_site,
                })
            }
            _ => None,
        }))
    }
}

/// The next document change on the bus; a subscriber that falls behind skips what it
/// missed rather than ending. `None` when the bus closes.
async fn next_document(
    rx: &mut tokio::sync::broadcast::Receiver<HubEvent>,
) -> Option<DocumentChanged> {
    loop {
        match rx.recv().await {
            Ok(HubEvent::Document(d)) => return Some(d),
            Ok(_) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
        }
    }
}

/// The record as it stands now (after the change announced).
async fn load(hub: &Hub, id: Uuid) -> Option<Typed> {
    match hub.store().typed_by_ids(&[id]).await {
        Ok(mut found) => found.pop(),
        Err(e) => {
            tracing::warn!(error = %e, "a subscription could not read a record");
            None
        }
    }
}

/// Document changes that `wanted` picks, read whole and typed by `map`.
fn typed_events<T, W, M>(hub: &Hub, wanted: W, map: M) -> impl Stream<Item = T> + use<T, W, M>
where
    T: Send + 'static,
    W: Fn(&DocumentChanged) -> bool + Send + Sync + 'static,
    M: Fn(Typed) -> Option<T> + Send + Sync + 'static,
{
    let rx = hub.subscribe();
    futures_util::stream::unfold(
        (rx, hub.clone(), wanted, map),
        |(mut rx, hub, wanted, map)| async move {
            loop {
                let d = next_document(&mut rx).await?;
                if !wanted(&d) {
                    continue;
                }
                if let Some(item) = load(&hub, d.doc_id).await.and_then(&map) {
                    return Some((item, (rx, hub, wanted, map)));
                }
            }
        },
    )
}

/// The bus as a stream, mapped and filtered; a subscriber that falls behind skips what
/// it missed rather than ending.
fn events<T>(
    rx: tokio::sync::broadcast::Receiver<HubEvent>,
    pick: impl Fn(HubEvent) -> Option<T> + Send + 'static,
) -> impl Stream<Item = T> {
    futures_util::stream::unfold((rx, pick), |(mut rx, pick)| async move {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    if let Some(item) = pick(e) {
                        return Some((item, (rx, pick)));
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}
