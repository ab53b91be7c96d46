import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { exists, run, type StackContext } from '../context';
import { javaArgFile, mavenClasspath } from '../provision';
import type { ServiceDef } from './types';

/** Kafka 4.x from Maven Central, one combined broker+controller node in KRaft mode. */

const dir = (ctx: StackContext) => path.join(ctx.data, 'kafka');
const JVM =
  '-Xms128m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true';
const LOG_CONFIG = path.join(__dirname, '..', 'jvm', 'kafka', 'log4j2.xml');
/** A fixed cluster id (base64 of 16 bytes): the state folder holds one cluster, and reset makes a new folder. */
const CLUSTER_ID = 'q1Sh-9_ISia_zwGINzRvyQ';

function serverProperties(ctx: StackContext): string {
  const { host, port, controllerPort } = ctx.config.kafka;
  return [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.bootstrap.servers=${host}:${controllerPort}`,
    `listeners=PLAINTEXT://${host}:${port},CONTROLLER://${host}:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://${host}:${port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    `log.dirs=${path.join(dir(ctx), 'log')}`,
    'num.partitions=1',
    'auto.create.topics.enable=false',
    'offsets.topic.replication.factor=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    'num.network.threads=2',
    'num.io.threads=2',
    'num.recovery.threads.per.data.dir=1',
    'offsets.topic.num.partitions=1',
    'transaction.state.log.num.partitions=1',
    'share.coordinator.state.topic.num.partitions=1',
    'log.cleaner.dedupe.buffer.size=16777216',
    'log.retention.hours=168',
    '',
  ].join('\n');
}

export const kafka: ServiceDef = {
  name: 'kafka',
  async provision(ctx) {
    await mavenClasspath(ctx, 'kafka', 'kafka');
  },
  ports: (ctx) => [ctx.config.kafka.port, ctx.config.kafka.controllerPort],
  async prepare(ctx) {
    const d = dir(ctx);
    mkdirSync(path.join(d, 'log'), { recursive: true });
    writeFileSync(path.join(d, 'server.properties'), serverProperties(ctx));
    if (exists(path.join(d, 'log', 'meta.properties'))) return;
    await run('kafka', 'java', [
      '-Xmx128m',
      `@${javaArgFile(ctx, 'kafka')}`,
      `-Dlog4j2.configurationFile=${LOG_CONFIG}`,
      'kafka.tools.StorageTool',
      'format',
      '--standalone',
      '--ignore-formatted',
      '-t',
      CLUSTER_ID,
      '-c',
      path.join(d, 'server.properties'),
    ]);
  },
  program(ctx) {
    const d = dir(ctx);
    return {
      command: `java ${JVM} -Dlog4j2.configurationFile=${LOG_CONFIG} @${javaArgFile(ctx, 'kafka')} kafka.Kafka ${path.join(d, 'server.properties')}`,
      stopWaitSecs: 60,
    };
  },
  async ready(ctx) {
    const admin = new Kafka({
      brokers: ctx.config.kafka.brokers,
      logLevel: logLevel.NOTHING,
      retry: { retries: 0 },
      connectionTimeout: 1000,
    }).admin();
    await admin.connect();
    try {
      await admin.describeCluster();
    } finally {
      await admin.disconnect();
    }
  },
  readyTimeoutMs: 90_000,
};
