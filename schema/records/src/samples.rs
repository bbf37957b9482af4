//! One record of every kind (several where optional fields matter), for tests that
//! must cover each kind: the document round trip here, the projection round trip in
//! the node's store. Built only for tests (the `samples` feature).

use chrono::{DateTime, NaiveDate, Utc, Weekday};
use healsync_domain::clinical::{
    Correction, CorrectionKind, Details, LabResult, MedicationStatus, Note, Prescription,
    ResultStatus,
};
use healsync_domain::*;
use uuid::Uuid;

use crate::AnyRecord;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

pub fn patient() -> Patient {
    Patient {
        id: PatientId(Uuid::now_v7()),
        mrn: "DEV-000001".into(),
        site: "DEV".into(),
        name: "Amina Njoroge".into(),
        email: "amina@example.org".into(),
        phone: Some("+254 712 000 111".into()),
        date_of_birth: NaiveDate::from_ymd_opt(1984, 3, 1),
        sex: Some(Sex::Female),
        address: Address {
            line1: Some("12 Moi Avenue".into()),
            city: Some("Nairobi".into()),
            ..Address::default()
        },
        emergency_contact: Some(EmergencyContact {
            name: "Otieno Njoroge".into(),
            phone: "+254 733 000 222".into(),
            relationship: Some("brother".into()),
        }),
        allergies: vec!["Penicillin".into()],
        active: true,
        created_at: t("2026-11-23T08:00:00Z"),
        updated_at: t("2026-11-23T08:00:00Z"),
    }
}

/// A checked-in appointment.
pub fn appointment() -> Appointment {
    Appointment {
        id: AppointmentId(Uuid::now_v7()),
        patient_id: PatientId(Uuid::now_v7()),
        doctor_id: DoctorId(Uuid::now_v7()),
        site: "DEV".into(),
        start: t("2026-11-24T09:00:00Z"),
        end: t("2026-11-24T09:20:00Z"),
        status: AppointmentStatus::CheckedIn,
        reason: Some("Follow-up".into()),
        notes: None,
        created_at: t("2026-11-23T08:00:00Z"),
        updated_at: t("2026-11-23T08:00:00Z"),
    }
}

/// Every kind at least once, with and without its optional fields.
pub fn every_kind() -> Vec<AnyRecord> {
    let mut out = vec![];

    out.push(AnyRecord::from(patient()));
    let mut bare = patient();
    bare.phone = None;
    bare.sex = None;
    bare.date_of_birth = None;
    bare.emergency_contact = None;
    bare.allergies = vec![];
    bare.address = Address::default();
    out.push(AnyRecord::from(bare));
    out.push(AnyRecord::from(Doctor {
        id: DoctorId(Uuid::now_v7()),
        name: "Dr. Wanjiru Kamau".into(),
        specializations: vec!["Cardiology".into(), "Internal medicine".into()],
        licence_number: "KMPDC-1234".into(),
        email: None,
        phone: Some("+254 700 000 000".into()),
        active: true,
        created_at: t("2026-11-23T08:00:00Z"),
        updated_at: t("2026-11-23T08:00:00Z"),
    }));
    out.push(AnyRecord::from(Schedule {
        id: ScheduleId(Uuid::now_v7()),
        doctor_id: DoctorId(Uuid::now_v7()),
        site: "DEV".into(),
        slot_minutes: 20,
        utc_offset_minutes: 180,
        rules: vec![WeeklyRule {
            weekday: Weekday::Tue,
            start: healsync_domain::schedule::parse_time("s", "09:00").expect("time"),
            end: healsync_domain::schedule::parse_time("e", "12:00").expect("time"),
        }],
        active: true,
        updated_at: t("2026-11-23T08:00:00Z"),
    }));
    out.push(AnyRecord::from(Leave {
        id: LeaveId(Uuid::now_v7()),
        doctor_id: DoctorId(Uuid::now_v7()),
        site: "DEV".into(),
        start: t("2026-12-01T00:00:00Z"),
        end: t("2026-12-08T00:00:00Z"),
        reason: Some("Annual leave".into()),
        cancelled: false,
    }));
    out.push(AnyRecord::from(appointment()));
    out.push(AnyRecord::from(Notification {
        id: NotificationId(Uuid::now_v7()),
        audience: Audience::Doctor(DoctorId(Uuid::now_v7())),
        kind: "APPOINTMENT_BOOKED".into(),
        title: "New appointment".into(),
        body: "Amina Njoroge, 24 Nov 09:00".into(),
        appointment_id: Some(AppointmentId(Uuid::now_v7())),
        created_at: t("2026-11-23T08:00:00Z"),
        read: false,
    }));
    out.push(AnyRecord::from(PatientRequest {
        id: PatientRequestId(Uuid::now_v7()),
        mrn: "NBO-000042".into(),
        date_of_birth: chrono::NaiveDate::from_ymd_opt(1984, 3, 1),
        requested_by: Some("reception".into()),
        status: RequestStatus::Pending,
        patient_id: None,
        answer: None,
        created_at: t("2026-11-23T08:00:00Z"),
        updated_at: t("2026-11-23T08:00:00Z"),
    }));
    out.push(AnyRecord::from(PatientRequest {
        id: PatientRequestId(Uuid::now_v7()),
        mrn: "NBO-000042".into(),
        date_of_birth: None,
        requested_by: None,
        status: RequestStatus::Shared,
        patient_id: Some(PatientId(Uuid::now_v7())),
        answer: Some("shared by the hub".into()),
        created_at: t("2026-11-23T08:00:00Z"),
        updated_at: t("2026-11-23T08:05:00Z"),
    }));
    out.push(AnyRecord::from(User {
        id: UserId(Uuid::now_v7()),
        username: "amina".into(),
        role: Role::Patient,
        password_hash: "$argon2id$v=19$...".into(),
        patient_id: Some(PatientId(Uuid::now_v7())),
        doctor_id: None,
        active: true,
        sites: vec![
            healsync_domain::SiteCode::parse("NBO").expect("site"),
            healsync_domain::SiteCode::parse("MSA").expect("site"),
        ],
        credentials_changed_at: Some(t("2026-11-23T09:00:00Z")),
    }));
    out.extend(billing());
    out.extend(clinical());
    out
}

/// The billing kinds; the first is an invoice the others refer to.
pub fn billing() -> Vec<AnyRecord> {
    use healsync_domain::billing::{Currency, InvoiceLine, PaymentMethod};
    let mut out = vec![];
    let kes = Currency::parse("KES").expect("currency");
    let invoice = Invoice {
        id: InvoiceId(Uuid::now_v7()),
        number: "DEV-INV-000001".into(),
        patient_id: PatientId(Uuid::now_v7()),
        site: "DEV".into(),
        currency: kes.clone(),
        lines: vec![
            InvoiceLine {
                service_code: Some("CONSULT".into()),
                description: "Consultation".into(),
                quantity: 1,
                unit_price: 150_000,
                discount: 0,
                tax_rate: 1600,
            },
            InvoiceLine {
                service_code: None,
                description: "Dressing pack".into(),
                quantity: 3,
                unit_price: 12_050,
                discount: 50,
                tax_rate: 0,
            },
        ],
        appointment_id: Some(AppointmentId(Uuid::now_v7())),
        notes: Some("Paid by employer".into()),
        issued_by: "front.desk".into(),
        issued_at: t("2026-11-23T08:00:00Z"),
    };
    out.push(AnyRecord::from(invoice.clone()));
    out.push(AnyRecord::from(InvoiceVoid {
        id: InvoiceVoidId(Uuid::now_v7()),
        invoice_id: invoice.id,
        patient_id: invoice.patient_id,
        site: "DEV".into(),
        reason: "billed to the wrong patient".into(),
        voided_by: "front.desk".into(),
        voided_at: t("2026-11-23T09:00:00Z"),
    }));
    let payment = Payment {
        id: PaymentId(Uuid::now_v7()),
        invoice_id: invoice.id,
        patient_id: invoice.patient_id,
        site: "DEV".into(),
        amount: -4_950,
        currency: kes.clone(),
        method: PaymentMethod::MobileMoney,
        reference: Some("QK7H2".into()),
        received_by: "front.desk".into(),
        received_at: t("2026-11-23T09:00:00Z"),
    };
    out.push(AnyRecord::from(payment.clone()));
    out.push(AnyRecord::from(PriceItem {
        id: PriceItemId(Uuid::now_v7()),
        site: "DEV".into(),
        code: "LAB-FBC".into(),
        name: "Full blood count".into(),
        unit_price: 35_050,
        currency: kes,
        tax_rate: 750,
        active: false,
        updated_at: t("2026-11-23T08:00:00Z"),
    }));

    let coverage = Coverage {
        id: CoverageId(Uuid::now_v7()),
        patient_id: invoice.patient_id,
        site: "DEV".into(),
        payer: "AAR Insurance".into(),
        member_id: "AAR-55821".into(),
        plan: None,
        valid_from: NaiveDate::from_ymd_opt(2026, 1, 1).expect("date"),
        valid_to: Some(NaiveDate::from_ymd_opt(2026, 12, 31).expect("date")),
        active: true,
        updated_at: t("2026-11-23T08:00:00Z"),
    };
    out.push(AnyRecord::from(coverage.clone()));
    out.push(AnyRecord::from(Coverage {
        id: CoverageId(Uuid::now_v7()),
        plan: Some("Gold".into()),
        valid_to: None,
        active: false,
        ..coverage.clone()
    }));
    let claim = Claim {
        id: ClaimId(Uuid::now_v7()),
        number: "DEV-CLM-000001".into(),
        invoice_id: invoice.id,
        invoice_number: invoice.number.clone(),
        patient_id: invoice.patient_id,
        coverage_id: coverage.id,
        payer: coverage.payer.clone(),
        member_id: coverage.member_id.clone(),
        site: "DEV".into(),
        amount: 200_000,
        currency: invoice.currency.clone(),
        status: healsync_domain::insurance::ClaimStatus::Draft,
        payer_reference: None,
        response: None,
        paid_amount: None,
        created_by: "front.desk".into(),
        created_at: t("2026-11-23T08:00:00Z"),
        updated_at: t("2026-11-23T08:00:00Z"),
    };
    out.push(AnyRecord::from(claim.clone()));
    out.push(AnyRecord::from(Claim {
        id: ClaimId(Uuid::now_v7()),
        status: healsync_domain::insurance::ClaimStatus::Paid,
        payer_reference: Some("AAR/2026/0042".into()),
        response: Some("paid in part".into()),
        paid_amount: Some(180_000),
        ..claim
    }));

    out.push(AnyRecord::from(MessagePreference {
        id: MessagePreferenceId(Uuid::now_v7()),
        patient_id: invoice.patient_id,
        site: "DEV".into(),
        email: true,
        sms: false,
        updated_at: t("2026-11-23T08:00:00Z"),
    }));
    out
}

/// Clinical entries: a note, a prescription amending it, a result retracting nothing.
pub fn clinical() -> Vec<AnyRecord> {
    let patient_id = PatientId(Uuid::now_v7());
    let note = MedicalRecord {
        id: MedicalRecordId(Uuid::now_v7()),
        patient_id,
        site: "DEV".into(),
        details: Details::Note(Note {
            text: "Fever 38.4 °C for three days.".into(),
        }),
        recorded_at: t("2026-11-23T08:00:00Z"),
        author: "dr.kamau".into(),
        author_doctor_id: Some(DoctorId(Uuid::now_v7())),
        appointment_id: Some(AppointmentId(Uuid::now_v7())),
        correction: None,
        created_at: t("2026-11-23T08:01:00Z"),
    };
    let prescription = MedicalRecord {
        id: MedicalRecordId(Uuid::now_v7()),
        details: Details::Prescription(Prescription {
            drug: "Paracetamol".into(),
            dose: "500 mg".into(),
            route: "oral".into(),
            frequency: "three times a day".into(),
            duration_days: Some(3),
            quantity: None,
            status: MedicationStatus::Active,
        }),
        correction: Some(Correction {
            of: note.id,
            kind: CorrectionKind::Amends,
            reason: "wrong entry type".into(),
        }),
        ..note.clone()
    };
    let result = MedicalRecord {
        id: MedicalRecordId(Uuid::now_v7()),
        details: Details::LabResult(LabResult {
            order_id: None,
            test_code: "718-7".into(),
            test_name: "Haemoglobin".into(),
            value: "10.9".into(),
            unit: Some("g/dL".into()),
            reference_range: Some("12.0-15.5".into()),
            abnormal: true,
            status: ResultStatus::Final,
        }),
        author_doctor_id: None,
        appointment_id: None,
        ..note.clone()
    };
    vec![note.into(), prescription.into(), result.into()]
}
