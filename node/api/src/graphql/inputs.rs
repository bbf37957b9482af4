//! GraphQL input types and their parsing into domain values. Parsing happens once, here,
//! at the edge; a bad value becomes `BAD_USER_INPUT` naming the field.

use async_graphql::{Enum, ID, InputObject, MaybeUndefined};
use chrono::{NaiveDate, Utc, Weekday};
use healsync_domain::patient::{
    MAX_TEXT, parse_allergies, parse_date_of_birth, parse_email, parse_name, parse_opt_text,
    parse_phone, parse_text,
};
use healsync_domain::{Address, DomainError, EmergencyContact, WeeklyRule};

use super::types::{GqlRole, GqlSex};

pub fn parse_id<T: std::str::FromStr<Err = DomainError>>(id: &ID) -> Result<T, DomainError> {
    id.as_str().parse::<T>()
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

#[derive(InputObject)]
pub struct AddressInput {
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

impl AddressInput {
    pub fn parse(&self) -> Result<Address, DomainError> {
        let f = |field, v: &Option<String>| parse_opt_text(field, v.as_deref(), MAX_TEXT);
        Ok(Address {
            line1: f("address.line1", &self.line1)?,
            line2: f("address.line2", &self.line2)?,
            city: f("address.city", &self.city)?,
            region: f("address.region", &self.region)?,
            postal_code: f("address.postalCode", &self.postal_code)?,
            country: f("address.country", &self.country)?,
        })
    }
}

#[derive(InputObject)]
pub struct EmergencyContactInput {
    pub name: String,
    pub phone: String,
    pub relationship: Option<String>,
}

impl EmergencyContactInput {
    pub fn parse(&self) -> Result<EmergencyContact, DomainError> {
        Ok(EmergencyContact {
            name: parse_text("emergencyContact.name", &self.name, MAX_TEXT)?,
            phone: parse_phone("emergencyContact.phone", &self.phone)?,
            relationship: parse_opt_text(
                "emergencyContact.relationship",
                self.relationship.as_deref(),
                60,
            )?,
        })
    }
}

#[derive(InputObject)]
pub struct PatientInput {
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
    /// `YYYY-MM-DD`.
    pub date_of_birth: Option<String>,
    pub sex: Option<GqlSex>,
    pub address: Option<AddressInput>,
    pub emergency_contact: Option<EmergencyContactInput>,
    pub allergies: Option<Vec<String>>,
}

impl PatientInput {
    /// The clinical fields this registration sets.
    pub fn clinical_fields(&self) -> Vec<&'static str> {
        self.allergies
            .iter()
            .filter(|a| !a.is_empty())
            .map(|_| "allergies")
            .collect()
    }

    pub fn parse(&self) -> Result<crate::service::patients::NewPatient, DomainError> {
        Ok(crate::service::patients::NewPatient {
            name: parse_name(&self.name)?,
            email: parse_email(&self.email)?,
            phone: self
                .phone
                .as_deref()
                .filter(|p| !p.trim().is_empty())
                .map(|p| parse_phone("phone", p))
                .transpose()?,
            date_of_birth: self
                .date_of_birth
                .as_deref()
                .map(|d| parse_date_of_birth(d, today()))
                .transpose()?,
            sex: self.sex.map(Into::into),
            address: self
                .address
                .as_ref()
                .map(AddressInput::parse)
                .transpose()?
                .unwrap_or_default(),
            emergency_contact: self
                .emergency_contact
                .as_ref()
                .map(EmergencyContactInput::parse)
                .transpose()?,
            allergies: parse_allergies(self.allergies.as_deref().unwrap_or(&[]))?,
        })
    }
}

/// Fields left out are unchanged; nullable fields set to `null` are cleared.
#[derive(InputObject)]
pub struct PatientUpdateInput {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: MaybeUndefined<String>,
    pub date_of_birth: MaybeUndefined<String>,
    pub sex: MaybeUndefined<GqlSex>,
    pub address: Option<AddressInput>,
    pub emergency_contact: MaybeUndefined<EmergencyContactInput>,
    pub allergies: Option<Vec<String>>,
}

fn maybe<T, U>(
    v: &MaybeUndefined<T>,
    parse: impl FnOnce(&T) -> Result<U, DomainError>,
) -> Result<Option<Option<U>>, DomainError> {
    Ok(match v {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(x) => Some(Some(parse(x)?)),
    })
}

impl PatientUpdateInput {
    /// The clinical fields this edit touches.
    pub fn clinical_fields(&self) -> Vec<&'static str> {
        self.allergies.iter().map(|_| "allergies").collect()
    }

    /// Parses every given field, returning the edit to apply to the current record.
    pub fn parse(
        &self,
    ) -> Result<
        impl FnOnce(&mut healsync_domain::Patient) -> Result<(), DomainError> + Send + 'static,
        DomainError,
    > {
        let name = self.name.as_deref().map(parse_name).transpose()?;
        let email = self.email.as_deref().map(parse_email).transpose()?;
        let phone = maybe(&self.phone, |p| parse_phone("phone", p))?;
        let dob = maybe(&self.date_of_birth, |d| parse_date_of_birth(d, today()))?;
        let sex = maybe(&self.sex, |s| Ok((*s).into()))?;
        let address = self.address.as_ref().map(AddressInput::parse).transpose()?;
        let ec = maybe(&self.emergency_contact, EmergencyContactInput::parse)?;
        let allergies = self.allergies.as_deref().map(parse_allergies).transpose()?;
        Ok(move |p: &mut healsync_domain::Patient| {
            if let Some(v) = name {
                p.name = v;
            }
            if let Some(v) = email {
                p.email = v;
            }
            if let Some(v) = phone {
                p.phone = v;
            }
            if let Some(v) = dob {
                p.date_of_birth = v;
            }
            if let Some(v) = sex {
                p.sex = v;
            }
            if let Some(v) = address {
                p.address = v;
            }
            if let Some(v) = ec {
                p.emergency_contact = v;
            }
            if let Some(v) = allergies {
                p.allergies = v;
            }
            Ok(())
        })
    }
}

#[derive(InputObject)]
pub struct AppointmentInput {
    pub patient_id: ID,
    pub doctor_id: ID,
    /// The start of a free slot (RFC 3339), as listed by `Doctor.availableSlots`.
    pub scheduled_at: String,
    pub reason: Option<String>,
    pub notes: Option<String>,
}

#[derive(InputObject)]
pub struct DoctorInput {
    pub name: String,
    pub specializations: Vec<String>,
    pub licence_number: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(InputObject)]
pub struct DoctorUpdateInput {
    pub name: Option<String>,
    pub specializations: Option<Vec<String>>,
    pub licence_number: Option<String>,
    pub email: MaybeUndefined<String>,
    pub phone: MaybeUndefined<String>,
    pub active: Option<bool>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "Weekday")]
pub enum GqlWeekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl From<GqlWeekday> for Weekday {
    fn from(d: GqlWeekday) -> Self {
        match d {
            GqlWeekday::Mon => Weekday::Mon,
            GqlWeekday::Tue => Weekday::Tue,
            GqlWeekday::Wed => Weekday::Wed,
            GqlWeekday::Thu => Weekday::Thu,
            GqlWeekday::Fri => Weekday::Fri,
            GqlWeekday::Sat => Weekday::Sat,
            GqlWeekday::Sun => Weekday::Sun,
        }
    }
}

#[derive(InputObject)]
pub struct WeeklyRuleInput {
    pub weekday: GqlWeekday,
    /// `HH:MM`, site wall-clock time.
    pub start: String,
    pub end: String,
}

impl WeeklyRuleInput {
    pub fn parse(&self) -> Result<WeeklyRule, DomainError> {
        use healsync_domain::schedule::parse_time;
        Ok(WeeklyRule {
            weekday: self.weekday.into(),
            start: parse_time("start", &self.start)?,
            end: parse_time("end", &self.end)?,
        })
    }
}

#[derive(InputObject)]
pub struct ScheduleInput {
    pub doctor_id: ID,
    pub slot_minutes: i32,
    /// The site's offset from UTC, in minutes, that the weekly times are written in.
    #[graphql(default = 0)]
    pub utc_offset_minutes: i32,
    pub weekly: Vec<WeeklyRuleInput>,
    #[graphql(default = true)]
    pub active: bool,
}

#[derive(InputObject)]
pub struct LeaveInput {
    pub doctor_id: ID,
    pub start: String,
    pub end: String,
    pub reason: Option<String>,
}

#[derive(InputObject)]
pub struct UserInput {
    pub username: String,
    pub password: String,
    pub role: GqlRole,
    pub patient_id: Option<ID>,
    pub doctor_id: Option<ID>,
}
