export * from './config-schema.js';
export { loadConfigFile, readConfigInput, parseConfig, findPipeline, sourceTableOf, targetTableOf, CONFIG_ENV } from './load-config.js';
