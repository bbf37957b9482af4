-- Records about one patient (medical record entries, invoices, their voids and
-- payments, coverages and claims) follow the patient to every site that holds it: finding a patient's
-- records by its id. Not partial: the look-up names its kinds as a parameter, which a
-- partial index's predicate could not be matched against.
CREATE INDEX documents_patient ON documents ((record->>'patientId'));
