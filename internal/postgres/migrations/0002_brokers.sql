-- Brokers beside Idura: a verification records the broker method that ran
-- it and what identified the caller (a national identity number, a customer
-- number, the caller id, a phone number or an e-mail address); a call, the
-- way its caller chose when the IVR offered more than one. CIBA ping mode:
-- the hash of the request's client_notification_token, and when its one
-- notification was accepted.
ALTER TABLE verifications
	ADD COLUMN method      text        NOT NULL DEFAULT '',
	ADD COLUMN id_kind     text        NOT NULL DEFAULT '',
	ADD COLUMN notify_hash text        NOT NULL DEFAULT '',
	ADD COLUMN notified_at timestamptz NOT NULL DEFAULT '-infinity';
UPDATE verifications SET id_kind = 'national_id',
	method = CASE country WHEN 'SE' THEN 'se-bankid' WHEN 'NO' THEN 'no-bankid' ELSE '' END;
ALTER TABLE calls ADD COLUMN identify text NOT NULL DEFAULT '';
