DROP TRIGGER user_counts_updated ON users;
DROP TRIGGER user_counts_deleted ON users;
DROP TRIGGER user_counts_inserted ON users;
DROP FUNCTION user_counts_moved();
DROP FUNCTION user_counts_removed();
DROP FUNCTION user_counts_added();
DROP TABLE user_counts;
