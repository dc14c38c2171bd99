-- The balances of the system accounts (@world, @fees) in stripes. Every
-- deposit and withdrawal posts to @world and every release with a fee to
-- @fees; as one row each, read and written by every such transaction,
-- they would make those transactions conflict with each other. So the
-- store adds to them without reading, in one of several rows of
-- balance_stripes, and a system account's balance is its row of
-- balances (if any) plus its stripes: read it from system_balances.

CREATE TABLE IF NOT EXISTS balance_stripes (
	account   text COLLATE "C" NOT NULL CHECK (account LIKE '@%'),
	currency  text COLLATE "C" NOT NULL,
	minor     smallint NOT NULL,
	stripe    smallint NOT NULL,
	-- Each stripe stays within escrow.MaxUnits; their sum is not checked.
	available bigint NOT NULL CHECK (available BETWEEN -999999999999999999 AND 999999999999999999),
	held      bigint NOT NULL CHECK (held BETWEEN -999999999999999999 AND 999999999999999999),
	PRIMARY KEY (account, currency, stripe)
) WITH (fillfactor = 20); -- room on each page, so that an update stays there (HOT) and writes no index

-- system_balances is the whole balance of each system account, as
-- balances has the others':
--   SELECT * FROM system_balances WHERE account = '@fees';
-- and every account's:
--   SELECT * FROM balances WHERE account NOT LIKE '@%' UNION ALL SELECT * FROM system_balances;
CREATE OR REPLACE VIEW system_balances AS
SELECT account, currency, max(minor) AS minor, sum(available)::bigint AS available, sum(held)::bigint AS held
FROM (
	SELECT account, currency, minor, available, held FROM balances WHERE account LIKE '@%'
	UNION ALL
	SELECT account, currency, minor, available, held FROM balance_stripes
) AS parts
GROUP BY account, currency;

COMMENT ON TABLE balances IS 'A system account''s (@world, @fees) balance here is only a part: read system_balances';
COMMENT ON TABLE balance_stripes IS 'Parts of the system accounts'' balances, summed by system_balances';
