export { fsStorage } from './storage.js'
export type { FsStorageOptions } from './storage.js'
