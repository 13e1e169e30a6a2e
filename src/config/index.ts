export * from './config-schema.js';
export { loadConfigFile, parseConfig, findPipeline, CONFIG_ENV } from './load-config.js';
