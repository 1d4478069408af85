"""The hot path from a visitor's browser and the network to the ledger: beacons and clicks
(beacons.py) through the group-commit writer (writer.py), conversions from postbacks
(conversions.py), signed offer tokens, bot recognition and visitor privacy. No HTTP here: web/
parses requests and calls these modules."""
