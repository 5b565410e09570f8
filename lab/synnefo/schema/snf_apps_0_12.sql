-- Synnefo 0.12 `snf_apps` (Django 1.2 + South on PostgreSQL): the Astakos (auth_*, im_*) and
-- Cyclades (db_*, userdata_*) tables the upgrade to 0.13 reads and writes, as 0.12.5 left them.
--
-- Where the facts come from:
-- * table and column names, what the migration commands read: shared research synnefo.md §1
--   ("Astakos", "Cyclades"), §2 (cyclades-astakos-migrate-013), §5 (the step-2 scripts);
-- * the 0.12 shape against research's 0.13 one: im_astakosuser has no `uuid` (0.13's im 0015)
--   nor `disturbed_quota`; auth_user.username is still varchar(30) (widened by 0015);
--   im_service has no `order`, and im_resource, im_astakosuserquota, the im_project* tables and
--   the quotaholder_app_* ones do not exist yet (0.13's im 0015-0024 and syncdb create them,
--   research §1 "Quotaholder": no South migrations, syncdb makes its tables);
--   db_virtualmachine and db_network have no serial_id (0.13's db 0059);
-- * types, lengths, NULLs and unique keys: the South frozen models of the last 0.12 migrations
--   (im 0014, db 0058, userdata 0003 in the debian/0.12.5-1 tree; research's "old code"),
--   mapped as Django 1.2's PostgreSQL backend maps fields (DateTimeField: timestamp with time
--   zone; ForeignKey: integer with a DEFERRABLE INITIALLY DEFERRED constraint);
-- * south_migrationhistory rows: the migration file names of those trees (the seed inserts
--   them, lab/synnefo/world.py).
-- Only the columns the upgrade touches, plus what makes a row what it is, are here: the 0.12
-- tables of Ganeti backends, IP pools, invitations and the like are left out.
-- Load with lab.core.postgres.run_sql_file (the database is created by the seed, not here).

-- Django and South -----------------------------------------------------------------------

CREATE TABLE django_content_type (
    id serial PRIMARY KEY,
    name varchar(100) NOT NULL,
    app_label varchar(100) NOT NULL,
    model varchar(100) NOT NULL,
    UNIQUE (app_label, model)
);

-- What `snf-manage migrate` compares with the migrations it ships (research §2: 0.13 adds
-- db 0059-0061 and im 0015-0024).
CREATE TABLE south_migrationhistory (
    id serial PRIMARY KEY,
    app_name varchar(255) NOT NULL,
    migration varchar(255) NOT NULL,
    applied timestamp with time zone NOT NULL
);

-- Astakos ---------------------------------------------------------------------------------

-- 0.12: username is a random 30-character hex string, email is "case as registered"
-- (research §1 "Identity semantics"); nothing in the database keeps two emails apart that
-- differ in case only, nor one email registered twice.
CREATE TABLE auth_user (
    id serial PRIMARY KEY,
    username varchar(30) NOT NULL UNIQUE,
    first_name varchar(30) NOT NULL,
    last_name varchar(30) NOT NULL,
    email varchar(75) NOT NULL,
    password varchar(128) NOT NULL,
    is_staff boolean NOT NULL,
    is_active boolean NOT NULL,
    is_superuser boolean NOT NULL,
    last_login timestamp with time zone NOT NULL,
    date_joined timestamp with time zone NOT NULL
);

-- Multi-table inheritance on auth_user (research §1).
CREATE TABLE im_astakosuser (
    user_ptr_id integer PRIMARY KEY REFERENCES auth_user (id) DEFERRABLE INITIALLY DEFERRED,
    affiliation varchar(255) NOT NULL,
    provider varchar(255) NOT NULL,
    third_party_identifier varchar(255) NULL,
    level integer NOT NULL,
    invitations integer NOT NULL,
    auth_token varchar(32) NULL,
    auth_token_created timestamp with time zone NULL,
    auth_token_expires timestamp with time zone NULL,
    updated timestamp with time zone NOT NULL,
    is_verified boolean NOT NULL,
    email_verified boolean NOT NULL,
    has_credits boolean NOT NULL,
    has_signed_terms boolean NOT NULL,
    date_signed_terms timestamp with time zone NULL,
    activation_sent timestamp with time zone NULL,
    UNIQUE (provider, third_party_identifier)
);

-- The services Astakos knows (the cloudbar's); auth_token is what service-list shows and the
-- 0.13 services send as their service token (research §5 service-list, §6).
CREATE TABLE im_service (
    id serial PRIMARY KEY,
    name varchar(255) NOT NULL UNIQUE,
    url varchar(100) NOT NULL,
    icon varchar(100) NOT NULL,
    auth_token varchar(32) NULL,
    auth_token_created timestamp with time zone NULL,
    auth_token_expires timestamp with time zone NULL
);

-- Cyclades --------------------------------------------------------------------------------

-- Used for the usage sums of cyclades-reset-usage (research §1, §5): cpu, ram in MB, disk in GB.
CREATE TABLE db_flavor (
    id serial PRIMARY KEY,
    cpu integer NOT NULL,
    ram integer NOT NULL,
    disk integer NOT NULL,
    disk_template varchar(32) NOT NULL,
    deleted boolean NOT NULL,
    UNIQUE (cpu, ram, disk, disk_template)
);

-- userid: the owner's email as 0.12 Astakos returned it, case as registered (research §1);
-- get_existing_users() reads it over every row, deleted ones included (research §1, §2).
CREATE TABLE db_virtualmachine (
    id serial PRIMARY KEY,
    name varchar(255) NOT NULL,
    userid varchar(100) NOT NULL,
    created timestamp with time zone NOT NULL,
    updated timestamp with time zone NOT NULL,
    imageid varchar(100) NOT NULL,
    hostid varchar(100) NOT NULL,
    flavor_id integer NOT NULL REFERENCES db_flavor (id) DEFERRABLE INITIALLY DEFERRED,
    deleted boolean NOT NULL,
    suspended boolean NOT NULL,
    action varchar(30) NULL,
    operstate varchar(30) NULL,  -- BUILD | ERROR | STOPPED | STARTED | DESTROYED
    buildpercentage integer NOT NULL
);

-- userid NULL: a public network (research §1).
CREATE TABLE db_network (
    id serial PRIMARY KEY,
    name varchar(128) NOT NULL,
    userid varchar(128) NULL,
    subnet varchar(32) NOT NULL,
    gateway varchar(32) NULL,
    dhcp boolean NOT NULL,
    type varchar(50) NOT NULL,
    link varchar(128) NULL,
    mac_prefix varchar(32) NOT NULL,
    public boolean NOT NULL,
    state varchar(32) NOT NULL,
    action varchar(32) NULL,
    created timestamp with time zone NOT NULL,
    updated timestamp with time zone NOT NULL,
    deleted boolean NOT NULL
);

-- A VM's NICs: what `--delete-user` removes with the VMs (research §2, "cascades to NIC rows").
CREATE TABLE db_networkinterface (
    id serial PRIMARY KEY,
    machine_id integer NOT NULL REFERENCES db_virtualmachine (id) DEFERRABLE INITIALLY DEFERRED,
    network_id integer NOT NULL REFERENCES db_network (id) DEFERRABLE INITIALLY DEFERRED,
    created timestamp with time zone NOT NULL,
    updated timestamp with time zone NOT NULL,
    index integer NOT NULL,
    mac varchar(32) NOT NULL UNIQUE,
    ipv4 varchar(15) NULL,
    ipv6 varchar(100) NULL,
    firewall_profile varchar(30) NULL,
    dirty boolean NOT NULL
);

-- The third source of Cyclades user ids (research §1: get_existing_users() reads `user` too).
CREATE TABLE userdata_publickeypair (
    id serial PRIMARY KEY,
    "user" varchar(100) NOT NULL,
    name varchar(255) NOT NULL,
    content text NOT NULL,
    fingerprint varchar(100) NOT NULL
);

-- The indexes Django makes for Cyclades's db_index fields and foreign keys.
CREATE INDEX db_virtualmachine_userid ON db_virtualmachine (userid);
CREATE INDEX db_virtualmachine_deleted ON db_virtualmachine (deleted);
CREATE INDEX db_virtualmachine_flavor_id ON db_virtualmachine (flavor_id);
CREATE INDEX db_network_userid ON db_network (userid);
CREATE INDEX db_network_public ON db_network (public);
CREATE INDEX db_network_deleted ON db_network (deleted);
CREATE INDEX db_networkinterface_machine_id ON db_networkinterface (machine_id);
CREATE INDEX db_networkinterface_network_id ON db_networkinterface (network_id);
