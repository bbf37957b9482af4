-- Search words now fold diacritics ("José" is found by "jose", as at a node): the
-- patients' words are projected again at the next start.
UPDATE hub_meta SET patient_terms_backfilled = FALSE;
