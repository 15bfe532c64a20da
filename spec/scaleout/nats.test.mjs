// Three neffos processes behind one nats-server (issue 6, spec 14.4).
import { scaleoutSuite } from './lib/suite.mjs';

scaleoutSuite('nats');
