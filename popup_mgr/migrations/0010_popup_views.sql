-- Popup views: the embed flags the first impression of each popup display ("view": 1 in its
-- beacon), so revenue can be read per thank-you page view as well as per impression (a popup
-- that pages through five offers makes five impressions but one view). Impressions stored before
-- this migration carry no flag: views count from the upgrade on.
ALTER TABLE impressions ADD COLUMN is_view INTEGER NOT NULL DEFAULT 0 CHECK (is_view IN (0, 1));
ALTER TABLE daily_stats ADD COLUMN views INTEGER NOT NULL DEFAULT 0;
