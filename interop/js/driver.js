// KafkaJS in a process of its own, driven one JSON request per line on stdin and answering one JSON
// line on stdout: the protocol of interop/txn_driver.py (whose docstring lists the ops), so the
// same transaction scenarios (interop/txn_clients.py) run against KafkaJS step by step.
//
// Run as `node driver.js BOOTSTRAP`. KafkaJS initialises a transactional producer id on the first
// transaction, so `producer` only connects and the first `begin` does InitProducerId. Its consumer
// always belongs to a group: `consume` subscribes a fresh group to the partitions' topics.
'use strict'

const readline = require('readline')
const { Kafka, logLevel } = require('kafkajs')

const TIMEOUT_MS = 15000
const bootstrap = process.argv[2]

// KafkaJS logs to stdout by default, which carries the answers: its log lines go to stderr.
const logCreator = () => ({ namespace, level, label, log }) => {
  const { message, ...extra } = log
  process.stderr.write(`${label} [${namespace}] ${message} ${JSON.stringify(extra)}\n`)
}

const kafka = new Kafka({
  clientId: 'comlog-interop',
  brokers: [bootstrap],
  logLevel: logLevel.WARN,
  logCreator,
  connectionTimeout: TIMEOUT_MS,
  requestTimeout: TIMEOUT_MS,
  retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 10 },
})

const producers = new Map()  // name -> { producer, transaction }

const key = (topic, partition) => `${topic}:${partition}`

const groupByTopic = entries => {
  const topics = new Map()
  for (const [topic, partition, extra] of entries) {
    if (!topics.has(topic)) topics.set(topic, [])
    topics.get(topic).push([partition, extra])
  }
  return topics
}

const ops = {
  async producer({ name, transactional_id, transaction_timeout_ms }) {
    const producer = kafka.producer({
      transactionalId: transactional_id,
      idempotent: true,
      maxInFlightRequests: 1,
      ...(transaction_timeout_ms == null ? {} : { transactionTimeout: transaction_timeout_ms }),
    })
    await producer.connect()
    producers.set(name, { producer, transaction: null })
  },

  async begin({ name }) {
    const entry = producers.get(name)
    entry.transaction = await entry.producer.transaction()
  },

  async send({ name, records }) {
    const { transaction } = producers.get(name)
    const offsets = []
    // One send per record, in order, so each record's offset is known.
    for (const [topic, partition, value] of records) {
      const [metadata] = await transaction.send({ topic, acks: -1, messages: [{ partition, value }] })
      offsets.push(Number(metadata.baseOffset))
    }
    return offsets
  },

  async send_offsets({ name, group, offsets }) {
    const topics = [...groupByTopic(offsets)].map(([topic, partitions]) => ({
      topic,
      partitions: partitions.map(([partition, offset]) => ({ partition, offset: String(offset) })),
    }))
    await producers.get(name).transaction.sendOffsets({ consumerGroupId: group, topics })
  },

  async commit({ name }) {
    await producers.get(name).transaction.commit()
  },

  async abort({ name }) {
    await producers.get(name).transaction.abort()
  },

  async close({ name }) {
    await producers.get(name).producer.disconnect()
    producers.delete(name)
  },

  async consume({ group, isolation, partitions, until, timeout_s }) {
    const seen = Object.fromEntries(partitions.map(([topic, partition]) => [key(topic, partition), []]))
    const missing = new Set(until.map(([topic, partition, value]) => JSON.stringify([key(topic, partition), value])))
    const consumer = kafka.consumer({
      groupId: group,
      readUncommitted: isolation === 'read_uncommitted',
      maxWaitTimeInMs: 100,
    })
    let finish
    const finished = new Promise(resolve => { finish = resolve })
    const timer = setTimeout(finish, timeout_s * 1000)
    try {
      await consumer.connect()
      await consumer.subscribe({ topics: [...groupByTopic(partitions).keys()], fromBeginning: true })
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ topic, partition, message }) => {
          const where = key(topic, partition)
          const value = message.value === null ? null : message.value.toString()
          if (!(where in seen)) seen[where] = []
          seen[where].push(value)
          missing.delete(JSON.stringify([where, value]))
          if (missing.size === 0) finish()
        },
      })
      if (missing.size === 0) finish()
      await finished
    } finally {
      clearTimeout(timer)
      await consumer.disconnect()
    }
    return seen
  },
}

// The innermost error that names a Kafka error code, else the outermost: KafkaJS wraps broker
// errors in retry and aggregate errors.
const describe = error => {
  let named = error
  for (let inner = error; inner; inner = inner.cause || inner.originalError || (inner.errors && inner.errors[0])) {
    if (inner.type) { named = inner; break }
  }
  return { name: named.name, code: named.type || null, fatal: null, message: String(error.message || error) }
}

const lines = readline.createInterface({ input: process.stdin })
let queue = Promise.resolve()
lines.on('line', line => {
  // One request at a time, answered in order.
  queue = queue.then(async () => {
    const { op, ...args } = JSON.parse(line)
    let answer
    try {
      const result = await ops[op](args)
      answer = { ok: true, result: result === undefined ? null : result }
    } catch (error) {
      answer = { ok: false, error: describe(error) }
    }
    process.stdout.write(JSON.stringify(answer) + '\n')
  })
})
lines.on('close', () => {
  queue.then(async () => {
    for (const { producer } of producers.values()) await producer.disconnect()
    process.exit(0)
  })
})
