-- The live schema the round-trip test alters into desired.sql: each table
-- differs from its desired form in the ways a real change does.

CREATE TABLE numeric_types (
  id bigint unsigned NOT NULL AUTO_INCREMENT,
  ti tinyint, tiu tinyint unsigned, tiz tinyint(2) unsigned zerofill, b1 tinyint(1) NOT NULL DEFAULT 1,
  si smallint, mi mediumint unsigned, i int(5), iz int(6) zerofill, bi bigint DEFAULT 42, old int,
  d decimal(10,2) NOT NULL DEFAULT 0, d0 decimal(10), f float, f2 float(7,3), db double, dbp double precision,
  bt bit(8), bo boolean DEFAULT FALSE,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

CREATE TABLE temporal_types (
  id int NOT NULL PRIMARY KEY,
  d date, t time, dt datetime(6),
  ts timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  ts2 timestamp(3) NULL DEFAULT NULL, y year
);

CREATE TABLE string_types (
  id int NOT NULL PRIMARY KEY,
  c char(10) NOT NULL DEFAULT '', vc varchar(100), nv national varchar(20),
  l1 varchar(40) CHARACTER SET latin1, bn binary(16), vb varbinary(32),
  tb tinyblob, bl blob, mb mediumblob, lb longblob, tt tinytext, tx text, mt mediumtext, lt longtext,
  e enum('a','b') NOT NULL DEFAULT 'a', s set('x','y','z') DEFAULT 'x,y',
  jn json NOT NULL, cb blob, ip6 inet6,
  g geometry NOT NULL, pt point NOT NULL, ls linestring, pg polygon,
  hidden_col int
) DEFAULT CHARSET=utf8mb4 COMMENT='old comment';

CREATE TABLE index_kinds (
  id int NOT NULL,
  a int NOT NULL, b varchar(200), c text, d int, e int,
  PRIMARY KEY (id, a),
  UNIQUE KEY uk_a_b (a, b),
  KEY k_b_prefix (b(10)),
  KEY k_d_desc (d, e),
  KEY k_e (e),
  KEY k_old (a, d),
  KEY k_hash (d) USING BTREE
) ENGINE=InnoDB COMMENT='index kinds';

CREATE TABLE generated_cols (
  id int NOT NULL PRIMARY KEY,
  price decimal(10,2) NOT NULL,
  qty int NOT NULL,
  total decimal(12,2) AS (price * qty) STORED,
  doc json,
  KEY k_total (total)
);

CREATE TABLE checks_unnamed_a (
  id int NOT NULL PRIMARY KEY,
  x int,
  CHECK (x > 1)
);

CREATE TABLE checks_unnamed_b (
  id int NOT NULL PRIMARY KEY,
  y int,
  CHECK (y > 0),
  CONSTRAINT positive CHECK (id > 1)
);

CREATE TABLE checks (
  id int NOT NULL PRIMARY KEY,
  qty int,
  lo int, hi int,
  CONSTRAINT positive CHECK (id > 1)
);

CREATE TABLE parent (
  id int NOT NULL,
  code varchar(10) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_code (code)
);

CREATE TABLE child (
  id int NOT NULL PRIMARY KEY,
  parent_id int,
  parent_code varchar(10),
  KEY k_parent (parent_id),
  CONSTRAINT fk_parent FOREIGN KEY (parent_id) REFERENCES parent (id) ON DELETE CASCADE
);

CREATE TABLE tree (
  id int NOT NULL PRIMARY KEY,
  up int
);

CREATE TABLE part_range (
  id int NOT NULL,
  created date NOT NULL,
  PRIMARY KEY (id, created)
) PARTITION BY RANGE (year(created)) (
  PARTITION p2023 VALUES LESS THAN (2024),
  PARTITION pmax VALUES LESS THAN MAXVALUE
);

CREATE TABLE part_list (
  id int NOT NULL,
  region int NOT NULL,
  PRIMARY KEY (id, region)
);

CREATE TABLE part_hash (
  id int NOT NULL PRIMARY KEY
) PARTITION BY HASH (id) PARTITIONS 2;

CREATE TABLE part_sub (
  id int NOT NULL,
  created date NOT NULL,
  PRIMARY KEY (id, created)
) PARTITION BY RANGE (year(created)) (
  PARTITION p2023 VALUES LESS THAN (2024),
  PARTITION pmax VALUES LESS THAN MAXVALUE
);

CREATE TABLE part_key (
  id int NOT NULL PRIMARY KEY
) PARTITION BY KEY (id) PARTITIONS 2;

CREATE TABLE options_myisam (
  id int NOT NULL PRIMARY KEY,
  v varchar(10)
) ENGINE=MyISAM AVG_ROW_LENGTH=10 MAX_ROWS=1000 PACK_KEYS=0;

CREATE TABLE options_aria (
  id int NOT NULL PRIMARY KEY
) ENGINE=Aria;

CREATE TABLE options_innodb (
  id int NOT NULL AUTO_INCREMENT PRIMARY KEY,
  v varchar(10)
) ENGINE=InnoDB ROW_FORMAT=COMPRESSED KEY_BLOCK_SIZE=8 DEFAULT CHARSET=latin1 COLLATE=latin1_bin;

CREATE TABLE versioned (
  id int NOT NULL PRIMARY KEY,
  v int
);

CREATE TABLE serials (
  id SERIAL
);

CREATE TABLE gone (
  id int NOT NULL PRIMARY KEY
);
