// KafkaJS through a TLS or SASL listener: produce some records to a topic and read them back
// with a fresh group, printing one JSON line: {"values": [...]} or, when connecting fails,
// {"error": name, "message": text} (for the wrong-credentials tests).
//
// Run as `node secure_roundtrip.js JSON`, the JSON holding bootstrap, topic, values, KafkaJS's
// own `ssl` and `sasl` options (ssl.ca holds PEM text) and, optionally, `retries`: how often a
// failed connection is tried again (0 for the failure tests, so that the first error is the one
// reported). For OAUTHBEARER, `sasl` is {mechanism: "oauthbearer", token}: the token KafkaJS's
// oauthBearerProvider gives.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

const TIMEOUT_MS = 15000
const { bootstrap, topic, values, ssl, sasl, retries = 5 } = JSON.parse(process.argv[2])

const kafka = new Kafka({
  clientId: 'comlog-interop-secure',
  brokers: [bootstrap],
  logLevel: logLevel.NOTHING,
  connectionTimeout: TIMEOUT_MS,
  requestTimeout: TIMEOUT_MS,
  // An authentication failure is not retried by KafkaJS; anything else is, a little.
  retry: { initialRetryTime: 100, maxRetryTime: 1000, retries },
  ...(ssl ? { ssl } : {}),
  ...(sasl ? { sasl: sasl.mechanism === 'oauthbearer' ? oauthBearer(sasl.token) : sasl } : {}),
})

function oauthBearer (token) {
  return { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: token }) }
}

async function roundtrip () {
  const producer = kafka.producer()
  await producer.connect()
  await producer.send({ topic, acks: -1, messages: values.map(value => ({ value })) })
  await producer.disconnect()

  const consumer = kafka.consumer({ groupId: `${topic}-group`, sessionTimeout: 10000 })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const seen = []
  await new Promise((resolve, reject) => {
    consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(message.value.toString())
        if (seen.length === values.length) resolve()
      },
    }).catch(reject)
  })
  await consumer.disconnect()
  return seen
}

roundtrip().then(
  seen => { process.stdout.write(JSON.stringify({ values: seen }) + '\n') },
  error => { process.stdout.write(JSON.stringify({ error: error.name, message: error.message }) + '\n') },
)
