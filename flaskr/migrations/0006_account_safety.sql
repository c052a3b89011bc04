-- Account safety: registrations counted per address, and failed logins of known devices
-- counted apart from everyone else's.

-- One row per registration attempt that reached the password hash, within the window;
-- older rows are pruned. Limits how many accounts (and hashes) one address can make.
CREATE TABLE registration_attempt (
  id INTEGER PRIMARY KEY,
  address TEXT NOT NULL DEFAULT '',
  at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- Recent registrations from one address, newest first; pruning by age.
CREATE INDEX registration_attempt_address_at ON registration_attempt (address, at);
CREATE INDEX registration_attempt_at ON registration_attempt (at);

-- One row per failed login that carried a valid device cookie for the username tried.
-- These count only against that device, never against the username or the address, so
-- strangers' guesses cannot lock the owner out and the owner's typos lock out no one else.
CREATE TABLE device_login_failure (
  id INTEGER PRIMARY KEY,
  device TEXT NOT NULL,
  at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- Recent failures of one device, newest first; pruning by age.
CREATE INDEX device_login_failure_device_at ON device_login_failure (device, at);
CREATE INDEX device_login_failure_at ON device_login_failure (at);
