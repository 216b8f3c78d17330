-- Brokers beside Idura: a verification records the broker method that ran
-- it and what identified the caller (a national identity number, a customer
-- number, the caller id, a phone number or an e-mail address); a call, the
-- way its caller chose when the IVR offered more than one.
ALTER TABLE verifications ADD COLUMN method TEXT NOT NULL DEFAULT '';
ALTER TABLE verifications ADD COLUMN id_kind TEXT NOT NULL DEFAULT '';
UPDATE verifications SET id_kind = 'national_id',
	method = CASE country WHEN 'SE' THEN 'se-bankid' WHEN 'NO' THEN 'no-bankid' ELSE '' END;
ALTER TABLE calls ADD COLUMN identify TEXT NOT NULL DEFAULT '';
