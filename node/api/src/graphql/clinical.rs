//! Medical records over GraphQL: the `MedicalRecord` type (the seed schema's
//! `Patient.medicalHistory` items), its typed details, the clinical summary, and the
//! inputs of the append-only writes.
//!
//! Every path to an entry asks [`may_read`]: the patient, or a doctor treating them.
//! A refused entry looks like a missing one; a refused history is `FORBIDDEN` (the
//! patient record itself is visible to the caller, its clinical part is not).

use super::read_audit::{self, audited};
use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use healsync_domain::clinical::{
    Allergy, CorrectionKind, Diagnosis, LabOrder, LabResult, MedicationStatus, Note, Prescription,
    ProblemStatus, ResultStatus, Severity, Vitals,
};
use healsync_domain::{Details, DomainError, EntryType, PatientId};
use healsync_store::queries::EntryRow;

use super::inputs::parse_id;
use super::loaders::{InCare, loader};
use super::types::ts;
use super::{parse_instant, session};
use crate::ApiError;
use crate::service::medical_records::NewEntry;
use crate::session::ClinicalReader;

/// The most entries of each list of a clinical summary, and of an entry's corrections.
pub const MAX_SUMMARY_ITEMS: usize = 100;
pub const MAX_CORRECTIONS: usize = 20;

/// Whether the session may read `patient`'s clinical entries now. A refusal is noted
/// in the audit trail, under the field that asked.
pub async fn may_read(ctx: &Context<'_>, patient: PatientId) -> Result<bool, ApiError> {
    let allowed = match session(ctx)?.clinical_reader(patient) {
        ClinicalReader::OwnRecord => true,
        ClinicalReader::IfTreating(doctor) => {
            loader(ctx)?
                .load_one(InCare { doctor, patient })
                .await?
                .unwrap_or(false)
                || by_break_glass(ctx, patient).await?
        }
        ClinicalReader::Never => false,
    };
    if !allowed {
        read_audit::refused(
            ctx,
            ctx.item.node.name.node.as_str(),
            "medical_record",
            patient,
        );
    }
    Ok(allowed)
}

/// Whether this session holds a break-glass on `patient` now (a DOCTOR who gave a
/// reason, within its hours); if so, this request's reads of them carry the reason in
/// the audit.
pub async fn by_break_glass(ctx: &Context<'_>, patient: PatientId) -> Result<bool, ApiError> {
    let reason = crate::service::medical_records::break_glass_reason(
        super::node(ctx)?,
        session(ctx)?,
        patient,
    )
    .await?;
    Ok(match reason {
        Some(r) => {
            read_audit::under_break_glass(ctx, patient, &r);
            true
        }
        None => false,
    })
}

/// A break-glass access just opened.
#[derive(SimpleObject)]
#[graphql(name = "BreakGlass")]
pub struct BreakGlassObj {
    pub patient_id: ID,
    pub reason: String,
    /// Until when it holds (RFC 3339).
    pub expires_at: String,
}

gql_enum!(
/// The kinds of medical record entry.
GqlEntryType = "MedicalRecordType", EntryType {
    Note, Diagnosis, Prescription, LabOrder, LabResult, Allergy, Vitals
});
gql_enum!(
    GqlProblemStatus = "ProblemStatus",
    ProblemStatus { Active, Resolved }
);
gql_enum!(
    GqlMedicationStatus = "MedicationStatus",
    MedicationStatus { Active, Stopped }
);
gql_enum!(
    GqlResultStatus = "ResultStatus",
    ResultStatus { Preliminary, Final }
);
gql_enum!(
    GqlSeverity = "AllergySeverity",
    Severity {
        Mild,
        Moderate,
        Severe,
        Unknown
    }
);
gql_enum!(
    /// How an entry corrects an earlier one.
    GqlCorrectionKind = "CorrectionKind", CorrectionKind { Amends, Retracts });

#[derive(SimpleObject)]
#[graphql(name = "VisitNote")]
pub struct NoteObj {
    pub text: String,
}

#[derive(SimpleObject)]
#[graphql(name = "Diagnosis")]
pub struct DiagnosisObj {
    /// ICD-10.
    pub code: String,
    pub text: String,
    pub status: GqlProblemStatus,
}

#[derive(SimpleObject)]
#[graphql(name = "Prescription")]
pub struct PrescriptionObj {
    pub drug: String,
    pub dose: String,
    pub route: String,
    pub frequency: String,
    pub duration_days: Option<u32>,
    pub quantity: Option<u32>,
    pub status: GqlMedicationStatus,
    /// The prescriber's account (the entry's author).
    pub prescriber: String,
}

#[derive(SimpleObject)]
#[graphql(name = "LabOrder")]
pub struct LabOrderObj {
    pub test_code: String,
    pub test_name: String,
}

#[derive(SimpleObject)]
#[graphql(name = "LabResult")]
pub struct LabResultObj {
    pub order_id: Option<ID>,
    pub test_code: String,
    pub test_name: String,
    pub value: String,
    pub unit: Option<String>,
    pub reference_range: Option<String>,
    pub abnormal: bool,
    pub status: GqlResultStatus,
}

#[derive(SimpleObject)]
#[graphql(name = "Allergy")]
pub struct AllergyObj {
    pub substance: String,
    pub reaction: Option<String>,
    pub severity: GqlSeverity,
}

#[derive(SimpleObject)]
#[graphql(name = "VitalSigns")]
pub struct VitalsObj {
    /// mmHg.
    pub systolic: Option<u16>,
    /// mmHg.
    pub diastolic: Option<u16>,
    /// Beats per minute.
    pub pulse: Option<u16>,
    pub temperature_c: Option<f64>,
    pub weight_kg: Option<f64>,
    pub height_cm: Option<f64>,
    /// Percent.
    pub spo2: Option<u8>,
}

#[derive(SimpleObject)]
#[graphql(name = "Correction")]
pub struct CorrectionObj {
    pub kind: GqlCorrectionKind,
    /// The entry corrected.
    pub of: ID,
    pub reason: String,
}

/// One entry of a patient's medical record, which the session may read.
pub struct MedicalRecordObj(pub EntryRow);

/// How a `MedicalRecord` resolves its fields; each output of [`MedicalRecordObj`] is noted as a read
/// first (`read_audit`).
pub struct MedicalRecordView(pub EntryRow);

audited!(MedicalRecordObj => MedicalRecordView, |r| ("medical_record", r.entry.id.0, Some(r.entry.patient_id)));

impl MedicalRecordObj {
    /// An entry just written (nothing corrects it yet).
    pub fn written(entry: healsync_domain::MedicalRecord) -> MedicalRecordObj {
        MedicalRecordObj(EntryRow {
            entry,
            corrected_by: vec![],
        })
    }
}

#[Object(name = "MedicalRecord")]
impl MedicalRecordView {
    async fn id(&self) -> ID {
        ID(self.0.entry.id.to_string())
    }
    async fn patient_id(&self) -> ID {
        ID(self.0.entry.patient_id.to_string())
    }
    /// The site where it was written.
    async fn site(&self) -> &str {
        &self.0.entry.site
    }
    #[graphql(name = "type")]
    async fn entry_type(&self) -> GqlEntryType {
        self.0.entry.entry_type().into()
    }
    /// When it was clinically true (the visit, the sample, the measurement).
    async fn recorded_at(&self) -> String {
        ts(self.0.entry.recorded_at)
    }
    /// When it was written.
    async fn created_at(&self) -> String {
        ts(self.0.entry.created_at)
    }
    /// The account that wrote it.
    async fn author(&self) -> &str {
        &self.0.entry.author
    }
    async fn appointment_id(&self) -> Option<ID> {
        self.0.entry.appointment_id.map(|a| ID(a.to_string()))
    }
    /// One line a person reads in a list.
    async fn description(&self) -> String {
        self.0.entry.details.describe()
    }
    /// What this entry corrects, if it is a correction.
    async fn correction(&self) -> Option<CorrectionObj> {
        self.0.entry.correction.as_ref().map(|c| CorrectionObj {
            kind: c.kind.into(),
            of: ID(c.of.to_string()),
            reason: c.reason.clone(),
        })
    }
    /// The entries that amend or retract this one (usually none; two when two sites
    /// corrected it independently).
    async fn corrected_by(&self) -> Vec<ID> {
        self.0
            .corrected_by
            .iter()
            .take(MAX_CORRECTIONS)
            .map(|c| ID(c.to_string()))
            .collect()
    }
    /// Whether it states a current fact: nothing corrects it and it is no retraction.
    async fn current(&self) -> bool {
        self.0.is_current()
    }
    async fn note(&self) -> Option<NoteObj> {
        match &self.0.entry.details {
            Details::Note(n) => Some(NoteObj {
                text: n.text.clone(),
            }),
            _ => None,
        }
    }
    async fn diagnosis(&self) -> Option<DiagnosisObj> {
        match &self.0.entry.details {
            Details::Diagnosis(d) => Some(DiagnosisObj {
                code: d.code.clone(),
                text: d.text.clone(),
                status: d.status.into(),
            }),
            _ => None,
        }
    }
    async fn prescription(&self) -> Option<PrescriptionObj> {
        match &self.0.entry.details {
            Details::Prescription(p) => Some(PrescriptionObj {
                drug: p.drug.clone(),
                dose: p.dose.clone(),
                route: p.route.clone(),
                frequency: p.frequency.clone(),
                duration_days: p.duration_days,
                quantity: p.quantity,
                status: p.status.into(),
                prescriber: self.0.entry.author.clone(),
            }),
            _ => None,
        }
    }
    async fn lab_order(&self) -> Option<LabOrderObj> {
        match &self.0.entry.details {
            Details::LabOrder(o) => Some(LabOrderObj {
                test_code: o.test_code.clone(),
                test_name: o.test_name.clone(),
            }),
            _ => None,
        }
    }
    async fn lab_result(&self) -> Option<LabResultObj> {
        match &self.0.entry.details {
            Details::LabResult(r) => Some(LabResultObj {
                order_id: r.order_id.map(|o| ID(o.to_string())),
                test_code: r.test_code.clone(),
                test_name: r.test_name.clone(),
                value: r.value.clone(),
                unit: r.unit.clone(),
                reference_range: r.reference_range.clone(),
                abnormal: r.abnormal,
                status: r.status.into(),
            }),
            _ => None,
        }
    }
    async fn allergy(&self) -> Option<AllergyObj> {
        match &self.0.entry.details {
            Details::Allergy(a) => Some(AllergyObj {
                substance: a.substance.clone(),
                reaction: a.reaction.clone(),
                severity: a.severity.into(),
            }),
            _ => None,
        }
    }
    async fn vitals(&self) -> Option<VitalsObj> {
        match &self.0.entry.details {
            Details::Vitals(v) => Some(VitalsObj {
                systolic: v.systolic,
                diastolic: v.diastolic,
                pulse: v.pulse,
                temperature_c: v.temperature_c,
                weight_kg: v.weight_kg,
                height_cm: v.height_cm,
                spo2: v.spo2,
            }),
            _ => None,
        }
    }
}

/// What a clinician reads first: the current facts, from the projections.
#[derive(SimpleObject)]
#[graphql(name = "ClinicalSummary")]
pub struct ClinicalSummaryObj {
    /// Current diagnoses with status ACTIVE, newest first.
    pub active_problems: Vec<MedicalRecordObj>,
    /// Current prescriptions with status ACTIVE, newest first.
    pub current_medications: Vec<MedicalRecordObj>,
    /// Current allergy entries, newest first.
    pub allergies: Vec<MedicalRecordObj>,
    /// The latest current vital signs.
    pub last_vitals: Option<MedicalRecordObj>,
}

#[derive(InputObject)]
pub struct NoteInput {
    pub text: String,
}

#[derive(InputObject)]
pub struct DiagnosisInput {
    /// ICD-10, like `J45` or `E11.9`.
    pub code: String,
    pub text: String,
    #[graphql(default_with = "GqlProblemStatus::Active")]
    pub status: GqlProblemStatus,
}

#[derive(InputObject)]
pub struct PrescriptionInput {
    pub drug: String,
    pub dose: String,
    pub route: String,
    pub frequency: String,
    pub duration_days: Option<i32>,
    pub quantity: Option<i32>,
    #[graphql(default_with = "GqlMedicationStatus::Active")]
    pub status: GqlMedicationStatus,
}

#[derive(InputObject)]
pub struct LabOrderInput {
    pub test_code: String,
    pub test_name: String,
}

#[derive(InputObject)]
pub struct LabResultInput {
    /// The lab order this answers, if any.
    pub order_id: Option<ID>,
    pub test_code: String,
    pub test_name: String,
    pub value: String,
    pub unit: Option<String>,
    pub reference_range: Option<String>,
    #[graphql(default = false)]
    pub abnormal: bool,
    pub status: GqlResultStatus,
}

#[derive(InputObject)]
pub struct AllergyInput {
    pub substance: String,
    pub reaction: Option<String>,
    #[graphql(default_with = "GqlSeverity::Unknown")]
    pub severity: GqlSeverity,
}

#[derive(InputObject)]
pub struct VitalsInput {
    pub systolic: Option<i32>,
    pub diastolic: Option<i32>,
    pub pulse: Option<i32>,
    pub temperature_c: Option<f64>,
    pub weight_kg: Option<f64>,
    pub height_cm: Option<f64>,
    pub spo2: Option<i32>,
}

/// A new entry: whose, when, what it corrects, and exactly one of the details.
#[derive(InputObject)]
pub struct MedicalRecordInput {
    pub patient_id: ID,
    /// The visit it belongs to.
    pub appointment_id: Option<ID>,
    /// When it was clinically true (RFC 3339); now when left out.
    pub recorded_at: Option<String>,
    /// The entry this amends (same patient, same type); `reason` says why.
    pub amends: Option<ID>,
    pub reason: Option<String>,
    pub note: Option<NoteInput>,
    pub diagnosis: Option<DiagnosisInput>,
    pub prescription: Option<PrescriptionInput>,
    pub lab_order: Option<LabOrderInput>,
    pub lab_result: Option<LabResultInput>,
    pub allergy: Option<AllergyInput>,
    pub vitals: Option<VitalsInput>,
}

fn small<T: TryFrom<i32>>(field: &'static str, v: Option<i32>) -> Result<Option<T>, DomainError> {
    v.map(|x| T::try_from(x).map_err(|_| DomainError::invalid(field, "out of range")))
        .transpose()
}

impl MedicalRecordInput {
    pub fn parse(self) -> Result<NewEntry, ApiError> {
        let mut details: Vec<Details> = Vec::new();
        if let Some(n) = self.note {
            details.push(Details::Note(Note { text: n.text }));
        }
        if let Some(d) = self.diagnosis {
            details.push(Details::Diagnosis(Diagnosis {
                code: d.code,
                text: d.text,
                status: d.status.into(),
            }));
        }
        if let Some(p) = self.prescription {
            details.push(Details::Prescription(Prescription {
                drug: p.drug,
                dose: p.dose,
                route: p.route,
                frequency: p.frequency,
                duration_days: small("durationDays", p.duration_days)?,
                quantity: small("quantity", p.quantity)?,
                status: p.status.into(),
            }));
        }
        if let Some(o) = self.lab_order {
            details.push(Details::LabOrder(LabOrder {
                test_code: o.test_code,
                test_name: o.test_name,
            }));
        }
        if let Some(r) = self.lab_result {
            details.push(Details::LabResult(LabResult {
                order_id: r.order_id.as_ref().map(parse_id).transpose()?,
                test_code: r.test_code,
                test_name: r.test_name,
                value: r.value,
                unit: r.unit,
                reference_range: r.reference_range,
                abnormal: r.abnormal,
                status: r.status.into(),
            }));
        }
        if let Some(a) = self.allergy {
            details.push(Details::Allergy(Allergy {
                substance: a.substance,
                reaction: a.reaction,
                severity: a.severity.into(),
            }));
        }
        if let Some(v) = self.vitals {
            details.push(Details::Vitals(Vitals {
                systolic: small("systolic", v.systolic)?,
                diastolic: small("diastolic", v.diastolic)?,
                pulse: small("pulse", v.pulse)?,
                temperature_c: v.temperature_c,
                weight_kg: v.weight_kg,
                height_cm: v.height_cm,
                spo2: small("spo2", v.spo2)?,
            }));
        }
        let details = match <[Details; 1]>::try_from(details) {
            Ok([d]) => d.validate()?,
            Err(_) => {
                return Err(ApiError::BadInput(
                    "give exactly one of note, diagnosis, prescription, labOrder, labResult, allergy, vitals".into(),
                ));
            }
        };
        Ok(NewEntry {
            patient_id: parse_id(&self.patient_id)?,
            appointment_id: self.appointment_id.as_ref().map(parse_id).transpose()?,
            recorded_at: self
                .recorded_at
                .as_deref()
                .map(|t| parse_instant("recordedAt", t))
                .transpose()?,
            details,
            amends: self.amends.as_ref().map(parse_id).transpose()?,
            reason: self.reason,
        })
    }
}

/// The types a history filter names, as the store spells them.
pub fn type_names(types: Option<Vec<GqlEntryType>>) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = types
        .unwrap_or_default()
        .into_iter()
        .map(|t| EntryType::from(t).as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}
