-- The tables of an escrow ledger. Text keys use the "C" collation, so that
-- every listing comes in byte order, as the storage contract and the other
-- adapters have it. Amounts are BIGINT minor units beside their currency's
-- code and number of minor units; a NULL amount is the zero Money of no
-- currency. Every time is a timestamptz, which holds microseconds, and a
-- *_ns column with the nanoseconds below them, so that a time reads back
-- exactly; a time of 0001-01-01 00:00 UTC is the zero time ("none").

CREATE TABLE accounts (
	id         text COLLATE "C" PRIMARY KEY,
	system     boolean NOT NULL,
	created_at timestamptz NOT NULL,
	created_ns smallint NOT NULL
);

-- balances holds what each account has in each currency, available and
-- held.
CREATE TABLE balances (
	account   text COLLATE "C" NOT NULL,
	currency  text COLLATE "C" NOT NULL,
	minor     smallint NOT NULL,
	available bigint, -- below zero only for the world account
	held      bigint,
	PRIMARY KEY (account, currency)
);

-- escrows holds one row per trade. state is escrow.State as a number (see
-- the state_names view); doc holds the fields nobody queries (terms,
-- timers, the refund request, the dispute, milestones, metadata), with
-- the columns' fields blanked.
CREATE TABLE escrows (
	id         text COLLATE "C" PRIMARY KEY,
	state      smallint NOT NULL,
	buyer      text COLLATE "C" NOT NULL,
	seller     text COLLATE "C" NOT NULL,
	arbiter    text COLLATE "C" NOT NULL,
	currency   text COLLATE "C" NOT NULL,
	minor      smallint NOT NULL,
	price      bigint,
	held       bigint,
	released   bigint,
	fees       bigint,
	refunded   bigint,
	next_due    timestamptz, -- the earlier of DueAt and RatingDueAt that is set; NULL: neither
	next_due_ns smallint,
	created_at timestamptz NOT NULL,
	created_ns smallint NOT NULL,
	version    bigint NOT NULL,
	doc        jsonb NOT NULL
);
CREATE INDEX escrows_due ON escrows (next_due, next_due_ns, id) WHERE next_due IS NOT NULL;
-- The party index: a party's escrows, newest first, in each role.
CREATE INDEX escrows_buyer ON escrows (buyer, created_at, created_ns, id);
CREATE INDEX escrows_seller ON escrows (seller, created_at, created_ns, id);
CREATE INDEX escrows_arbiter ON escrows (arbiter, created_at, created_ns, id) WHERE arbiter <> '';

-- The double-entry journal: one row per entry, one per posting.
CREATE TABLE entries (
	seq      bigint PRIMARY KEY,
	at       timestamptz NOT NULL,
	at_ns    smallint NOT NULL,
	kind     text COLLATE "C" NOT NULL,
	escrow   text COLLATE "C" NOT NULL,
	currency text COLLATE "C" NOT NULL,
	minor    smallint NOT NULL
);
CREATE TABLE postings (
	seq     bigint NOT NULL REFERENCES entries (seq),
	idx     smallint NOT NULL, -- the posting's place in its entry
	account text COLLATE "C" NOT NULL,
	bucket  smallint NOT NULL, -- 0 available, 1 held
	change  bigint NOT NULL,   -- minor units of the entry's currency
	PRIMARY KEY (seq, idx)
);
CREATE INDEX postings_account ON postings (account, seq);

-- The event outbox, numbered in commit order.
CREATE TABLE events (
	seq      bigint PRIMARY KEY,
	type     text COLLATE "C" NOT NULL,
	at       timestamptz NOT NULL,
	at_ns    smallint NOT NULL,
	account  text COLLATE "C" NOT NULL,
	escrow   text COLLATE "C" NOT NULL,
	buyer    text COLLATE "C" NOT NULL,
	seller   text COLLATE "C" NOT NULL,
	actor    text COLLATE "C" NOT NULL,
	by_timer boolean NOT NULL,
	state    smallint NOT NULL,
	currency text COLLATE "C", -- of amount and fee; NULL when both are the zero Money
	minor    smallint,
	amount   bigint,
	fee      bigint,
	note     text NOT NULL,
	metadata jsonb
);
CREATE INDEX events_escrow ON events (escrow, seq) WHERE escrow <> '';

CREATE TABLE consumers (
	name       text COLLATE "C" PRIMARY KEY,
	seq        bigint NOT NULL,
	updated_at timestamptz NOT NULL,
	updated_ns smallint NOT NULL
);

-- ratings: doc holds the detail scores, the comment, the reply and the
-- revision.
CREATE TABLE ratings (
	escrow     text COLLATE "C" NOT NULL,
	rater      text COLLATE "C" NOT NULL,
	ratee      text COLLATE "C" NOT NULL,
	ratee_role smallint NOT NULL,
	score      smallint NOT NULL,
	at         timestamptz NOT NULL,
	at_ns      smallint NOT NULL,
	is_default boolean NOT NULL,
	currency   text COLLATE "C",
	minor      smallint,
	value      bigint,
	weight     double precision NOT NULL,
	counted    boolean NOT NULL,
	points     bigint NOT NULL,
	doc        jsonb NOT NULL,
	PRIMARY KEY (escrow, rater)
);
CREATE INDEX ratings_ratee ON ratings (ratee, at, at_ns, escrow, rater);

-- aggregates: the reputation of a party in a role. The rank_* columns are
-- the ranking keys as TopAggregates orders them (below zero and NaN as
-- zero); doc holds the windows and detail sums.
CREATE TABLE aggregates (
	party         text COLLATE "C" NOT NULL,
	role          smallint NOT NULL,
	points        bigint NOT NULL,
	positive      bigint NOT NULL,
	neutral       bigint NOT NULL,
	negative      bigint NOT NULL,
	beta_positive double precision NOT NULL,
	beta_negative double precision NOT NULL,
	wilson        double precision NOT NULL,
	expectation   double precision NOT NULL,
	rank_wilson      double precision NOT NULL,
	rank_expectation double precision NOT NULL,
	rekey_day     integer NOT NULL,
	doc           jsonb NOT NULL,
	PRIMARY KEY (party, role)
);
CREATE INDEX aggregates_wilson ON aggregates (role, rank_wilson DESC, party);
CREATE INDEX aggregates_expectation ON aggregates (role, rank_expectation DESC, party);
CREATE INDEX aggregates_rekey ON aggregates (rekey_day, party, role) WHERE rekey_day <> 0;

CREATE TABLE day_counts (
	party    text COLLATE "C" NOT NULL,
	role     smallint NOT NULL,
	day      integer NOT NULL,
	positive integer NOT NULL,
	neutral  integer NOT NULL,
	negative integer NOT NULL,
	PRIMARY KEY (party, role, day)
);

CREATE TABLE pair_months (
	ratee    text COLLATE "C" NOT NULL,
	rater    text COLLATE "C" NOT NULL,
	month    text COLLATE "C" NOT NULL,
	positive bigint NOT NULL,
	negative bigint NOT NULL,
	PRIMARY KEY (ratee, rater, month)
);

CREATE TABLE idempotency (
	key     text COLLATE "C" PRIMARY KEY,
	request text NOT NULL,
	result  bytea NOT NULL,
	at      timestamptz NOT NULL,
	at_ns   smallint NOT NULL
);
CREATE INDEX idempotency_age ON idempotency (at, at_ns, key);
