-- A patient's search words by patient, covering: a search for several words checks
-- the other words of each candidate of the rarest one from the index alone.
DROP INDEX patient_terms_doc;
CREATE INDEX patient_terms_doc_term ON patient_terms(doc_id, term);
