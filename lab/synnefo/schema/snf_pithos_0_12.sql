-- Synnefo 0.12 `snf_pithos`: the Pithos backend's tables (SQLAlchemy, not Django) at alembic
-- revision 3dd56e750a3, the head of 0.12.5, before 0.13's 165ba3fbfe53 (accounts to uuids),
-- 2a309a9a3438 (negative populations) and 27381099d477 (public.url).
--
-- Where the facts come from:
-- * tables, columns, keys, the root node and what an account is: shared research synnefo.md
--   §1 ("Pithos backend DB"); what pithos-manage-accounts, pithos-migrate and the quota export
--   read and write: §3, §4;
-- * the 0.12 shape against research's 0.13 one: `public` has no `url` yet, and nodes already
--   has latest_version and idx_nodes_parent (alembic 230f8ce9c90f and 8320b1c62d9 are older
--   than 3dd56e750a3, research §3 "Revision chain");
-- * types, NULLs, defaults and ON DELETE rules: the SQLAlchemy table definitions of the
--   debian/0.12.5-1 tree, as SQLAlchemy creates them on PostgreSQL (an Integer primary key of
--   its own is a serial; String(n) is varchar(n); DECIMAL(16,6) is numeric(16,6)).
-- alembic_version is not here: the seed creates it when the world is to be stamped (an
-- installation that never ran pithos-migrate has none, the runbook's "current is None").
-- Load with lab.core.postgres.run_sql_file (the database is created by the seed, not here).

-- The tree of paths: node 0 is the root (path '', parent 0); an account is a node with
-- parent 0 (path = the account: the owner's email in 0.12); a container's path is
-- account/container, an object's account/container/name.
CREATE TABLE nodes (
    node serial PRIMARY KEY,
    parent integer REFERENCES nodes (node) ON DELETE CASCADE ON UPDATE CASCADE,
    latest_version integer,
    path varchar(2048) NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX idx_nodes_path ON nodes (path);
CREATE INDEX idx_nodes_parent ON nodes (parent);

-- key 'quota' (bytes as a string; 0 means no limit in 0.12) or 'versioning' (auto | none).
-- An account has rows only when set explicitly; a container gets both at creation.
CREATE TABLE policy (
    node integer REFERENCES nodes (node) ON DELETE CASCADE ON UPDATE CASCADE,
    key varchar(128),
    value varchar(256),
    PRIMARY KEY (node, key)
);

-- Per node and cluster (0 normal, 1 history, 2 deleted): population counts the children's
-- versions, size sums every descendant's.
CREATE TABLE statistics (
    node integer REFERENCES nodes (node) ON DELETE CASCADE ON UPDATE CASCADE,
    population integer NOT NULL DEFAULT 0,
    size bigint NOT NULL DEFAULT 0,
    mtime numeric(16, 6),
    cluster integer NOT NULL DEFAULT 0,
    PRIMARY KEY (node, cluster)
);

-- muser: the user id that wrote the version (an email in 0.12).
CREATE TABLE versions (
    serial serial PRIMARY KEY,
    node integer REFERENCES nodes (node) ON DELETE CASCADE ON UPDATE CASCADE,
    hash varchar(256),
    size bigint NOT NULL DEFAULT 0,
    type varchar(256) NOT NULL DEFAULT '',
    source integer,
    mtime numeric(16, 6),
    muser varchar(256) NOT NULL DEFAULT '',
    uuid varchar(64) NOT NULL DEFAULT '',
    checksum varchar(256) NOT NULL DEFAULT '',
    cluster integer NOT NULL DEFAULT 0
);
CREATE INDEX idx_versions_node_mtime ON versions (node, mtime);
CREATE INDEX idx_versions_node_uuid ON versions (uuid);

CREATE TABLE attributes (
    serial integer REFERENCES versions (serial) ON DELETE CASCADE ON UPDATE CASCADE,
    domain varchar(256),
    key varchar(128),
    value varchar(256),
    PRIMARY KEY (serial, domain, key)
);

-- An account's groups of users: owner, member are user ids.
CREATE TABLE groups (
    owner varchar(256),
    name varchar(256),
    member varchar(256),
    PRIMARY KEY (owner, name, member)
);
CREATE INDEX idx_groups_member ON groups (member);

-- Permissions: a path (container or object) and who may read (key 0) or write (key 1) it:
-- value is an account, account:group or *.
CREATE TABLE xfeatures (
    feature_id serial PRIMARY KEY,
    path varchar(2048)
);
CREATE UNIQUE INDEX idx_features_path ON xfeatures (path);

CREATE TABLE xfeaturevals (
    feature_id integer REFERENCES xfeatures (feature_id) ON DELETE CASCADE,
    key integer,
    value varchar(256),
    PRIMARY KEY (feature_id, key, value)
);

CREATE TABLE public (
    public_id serial PRIMARY KEY,
    path varchar(2048) NOT NULL,
    active boolean NOT NULL DEFAULT true
);
CREATE UNIQUE INDEX idx_public_path ON public (path);
