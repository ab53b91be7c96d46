import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { StackContext } from '../context';
import { httpProbe } from '../probes';
import type { ServiceDef } from './types';

/** Debian's ClickHouse 18.16 (DESIGN §4); its native port moves off 9000, which MinIO keeps. */
function configXml(ctx: StackContext, dir: string): string {
  const { host, httpPort, tcpPort } = ctx.config.clickhouse;
  return `<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <console>1</console>
  </logger>
  <listen_host>${host}</listen_host>
  <http_port>${httpPort}</http_port>
  <tcp_port>${tcpPort}</tcp_port>
  <path>${dir}/</path>
  <tmp_path>${dir}/tmp/</tmp_path>
  <user_files_path>${dir}/user_files/</user_files_path>
  <format_schema_path>${dir}/format_schemas/</format_schema_path>
  <users_config>${dir}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
</yandex>
`;
}

function usersXml(ctx: StackContext): string {
  const { user, password } = ctx.config.clickhouse;
  const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return `<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
      <load_balancing>random</load_balancing>
    </default>
  </profiles>
  <users>
    <${user}>
      <password>${escape(password)}</password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </${user}>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`;
}

export const clickhouse: ServiceDef = {
  name: 'clickhouse',
  apt: ['clickhouse-server', 'clickhouse-client'],
  ports: (ctx) => [ctx.config.clickhouse.httpPort, ctx.config.clickhouse.tcpPort],
  async prepare(ctx) {
    const dir = path.join(ctx.data, 'clickhouse');
    for (const sub of ['tmp', 'user_files', 'format_schemas'])
      mkdirSync(path.join(dir, sub), { recursive: true });
    writeFileSync(path.join(dir, 'config.xml'), configXml(ctx, dir));
    writeFileSync(path.join(dir, 'users.xml'), usersXml(ctx));
  },
  program(ctx) {
    const dir = path.join(ctx.data, 'clickhouse');
    return { command: `/usr/sbin/clickhouse-server --config-file=${dir}/config.xml`, directory: dir };
  },
  async ready(ctx) {
    await httpProbe(`${ctx.config.clickhouse.url}/ping`, (s, body) => s === 200 && body.startsWith('Ok'));
  },
  readyTimeoutMs: 60_000,
  url: (ctx) => ctx.config.clickhouse.url,
};
