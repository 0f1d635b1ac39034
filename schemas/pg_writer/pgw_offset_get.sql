-- The stored position of ($1 group, $2 topic, $3 partition).
SELECT next_offset FROM kafka_offsets
 WHERE consumer_group = $1::text AND topic = $2::text AND partition = $3::integer
