import { ConfigError } from '../errors/index.js';
import type { CdcMode, ChangeSource, ChangeSourceOptions } from './change-source.js';

/**
 * The one place that maps (source engine, CDC mode) to a change source. Implementations are loaded
 * when used: a process that only reconciles never loads the binlog decoder or the replication client.
 */
export async function createChangeSource(mode: CdcMode, options: ChangeSourceOptions): Promise<ChangeSource> {
  const engine = options.database.engine;
  const where = `pipelines.${options.pipeline}.cdc.mode`;
  switch (mode) {
    case 'binlog': {
      if (engine !== 'mysql') throw new ConfigError(`${where}: 'binlog' needs a MySQL/MariaDB source`, { subject: where });
      const { MysqlBinlogSource } = await import('./mysql/mysql-binlog-source.js');
      return new MysqlBinlogSource(options);
    }
    case 'logical': {
      if (engine !== 'postgres') throw new ConfigError(`${where}: 'logical' needs a PostgreSQL source`, { subject: where });
      const { PostgresLogicalSource } = await import('./postgres/postgres-logical-source.js');
      return new PostgresLogicalSource(options);
    }
    case 'polling':
      if (engine === 'mysql') {
        const { MysqlPollingSource } = await import('./mysql/mysql-polling-source.js');
        return new MysqlPollingSource(options);
      } else {
        const { PostgresPollingSource } = await import('./postgres/postgres-polling-source.js');
        return new PostgresPollingSource(options);
      }
    default: {
      const unreachable: never = mode;
      throw new ConfigError(`${where}: unknown mode ${String(unreachable)}`, { subject: where });
    }
  }
}
