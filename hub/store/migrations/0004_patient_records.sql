-- Records about one patient (medical record entries) follow the patient to every site
-- that holds it: finding a patient's records by its id.
CREATE INDEX documents_patient ON documents ((record->>'patientId')) WHERE kind = 'medical_record';
