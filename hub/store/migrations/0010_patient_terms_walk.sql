-- A patient's search words by patient, covering: a search for several words checks
-- the others for each candidate, and a search for a common word walks patients newest
-- first, both from the index alone.
DROP INDEX patient_terms_doc;
CREATE INDEX patient_terms_doc_term ON patient_terms(doc_id, term);
