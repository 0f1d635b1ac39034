-- The consumed Kafka offset ($1 group, $2 topic, $3 partition, $4 next
-- offset), written in the batch's own transaction.
INSERT INTO kafka_offsets AS k (consumer_group, topic, partition, next_offset)
VALUES ($1::text, $2::text, $3::integer, $4::bigint)
ON CONFLICT (consumer_group, topic, partition) DO UPDATE
   SET next_offset = EXCLUDED.next_offset, updated_at = now()
 WHERE k.next_offset IS DISTINCT FROM EXCLUDED.next_offset
