import * as vitest from 'vitest';
import { MemoryStorage } from '../../src/storage/index.js';
import { storageCompliance } from '../../src/testing/storage-compliance.js';

storageCompliance({ name: 'MemoryStorage', setup: () => new MemoryStorage(), test: vitest });
// With memory reserved up front (1 MiB: the larger cases fill it and go on allocating).
storageCompliance({ name: 'MemoryStorage { preallocate }', setup: () => new MemoryStorage({ preallocate: 1024 * 1024 }), test: vitest });
