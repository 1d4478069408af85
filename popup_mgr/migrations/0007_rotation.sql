-- Rotation: how a property orders its offers in /api/offers (priority, even, or the learning
-- auto mode), and how many offers its popup shows at most.
ALTER TABLE properties ADD COLUMN rotation TEXT NOT NULL DEFAULT 'priority'
    CHECK (rotation IN ('priority', 'even', 'auto'));
ALTER TABLE properties ADD COLUMN max_offers INTEGER NOT NULL DEFAULT 5;
