import * as vitest from 'vitest';
import { MemoryStorage } from '../../src/storage/index.js';
import { storageCompliance } from '../../src/testing/storage-compliance.js';

storageCompliance({ name: 'MemoryStorage', setup: () => new MemoryStorage(), test: vitest });
