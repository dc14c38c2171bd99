-- The states of a return and refund, numbered after the first nine as
-- escrow.State numbers them. The escrows' doc column also holds, from this
-- release on, the fields that came with them and with the rest of the
-- trade (shipments, extensions, the return, evidence, the cart, the
-- dispute's escalation and the new timers); it needs no change for them.
--
-- escrow_states came into 0001 after 0001's first release: a schema that
-- release made has no such table, and gets it, with the first nine
-- states, here.
CREATE TABLE IF NOT EXISTS escrow_states (
	state smallint PRIMARY KEY,
	name  text NOT NULL
);
INSERT INTO escrow_states VALUES (1, 'AwaitingPayment'), (2, 'AwaitingShipment'), (3, 'AwaitingConfirmation'),
	(4, 'RefundRequested'), (5, 'Disputed'), (6, 'Completed'), (7, 'Refunded'), (8, 'Resolved'), (9, 'Closed')
	ON CONFLICT (state) DO NOTHING;
INSERT INTO escrow_states VALUES (10, 'ReturnRequested'), (11, 'AwaitingReturn'), (12, 'ReturnShipped'),
	(13, 'ReturnRefused');
