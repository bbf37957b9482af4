-- Medical record numbers the hub mints for patients central admins register to a
-- site: the last number used per site (the numbers themselves are offset into a range
-- no node's counter reaches, see SiteCode::hub_mrn).
CREATE TABLE hub_mrn_counters (
    site TEXT PRIMARY KEY REFERENCES sites(code),
    last BIGINT NOT NULL
);

-- Central administrators limited to named sites (an account of the hub without a row
-- here sees every site). Kept with the hub's registry of sites and nodes: hub accounts
-- never reach a node, and the limit is the hub's to enforce.
CREATE TABLE admin_sites (
    user_id UUID PRIMARY KEY,
    sites TEXT[] NOT NULL CHECK (cardinality(sites) > 0)
);
