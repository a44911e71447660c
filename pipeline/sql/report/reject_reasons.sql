-- Rejected records by reason.
SELECT reason, count(*) AS records FROM rejects GROUP BY reason ORDER BY records DESC, reason
