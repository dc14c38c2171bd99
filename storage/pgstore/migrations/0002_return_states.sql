-- The states of a return and refund, numbered after the first nine as
-- escrow.State numbers them. The escrows' doc column also holds, from this
-- release on, the fields that came with them and with the rest of the
-- trade (shipments, extensions, the return, evidence, the cart, the
-- dispute's escalation and the new timers); it needs no change for them.
INSERT INTO escrow_states VALUES (10, 'ReturnRequested'), (11, 'AwaitingReturn'), (12, 'ReturnShipped'),
	(13, 'ReturnRefused');
